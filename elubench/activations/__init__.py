"""Activations: the registry of built-in names, the parsing of a name with its parameters, a
user's code behind a name (located, resolved, bound), the checks it passes before anything
trains, and the torch modules elubench implements. Parsing is pure Python; torch is imported
only where a module is built."""

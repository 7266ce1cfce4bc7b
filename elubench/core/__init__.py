"""The foundation every other package stands on, importing nothing of elubench: the errors a
user can act on, the atomic file writer, default folders, the limits of a spec, what this
machine offers, the seeding rule and the units of a task's score. Pure Python, no torch."""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (tool.setuptools.dynamic)

"""What a spec says: the paper's notation, the YAML read within bounds, the schema, the net's
layout (shapes, parameters, FLOPs), reading files with located errors, and the run matrix a
spec expands into. Pure Python, no torch."""

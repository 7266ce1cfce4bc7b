"""elubench: benchmark activation functions the way the ELU paper did.

Importing the package is cheap (no torch); torch loads only where a net is built or trained.
"""

__version__ = "0.1.0"

"""elubench: benchmark activation functions the way the ELU paper did.

Importing the package is cheap (no torch); torch loads only where a net is built or trained.
"""

from elubench.core import __version__

__all__ = ["__version__"]

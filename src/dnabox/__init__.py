"""dnabox: provision SmartX-style boxes across core, edge and end tiers.

The package is layered; imports flow one way:
``cli -> provision -> adapters -> plan -> inventory`` (``lab`` and ``layers`` sit beside).
"""

__version__ = "0.1.0"

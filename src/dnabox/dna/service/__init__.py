"""The reference X+AI service: collector (end devices), trainer (core), inference (edge).

Every module here runs inside a container on a box with only the standard library, nats-py
and numpy: nothing in this package may import the rest of dnabox (pydantic, paramiko, ...).
Run one with ``python3 -m dnabox.dna.service.<role> --config FILE``.
"""

"""Desired state derived from the fleet model: pure functions, no I/O beyond reading files."""

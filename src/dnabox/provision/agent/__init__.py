"""The connection agent: a per-fleet process keeping SSH connections open for `dnabox exec`.

``server`` is the process (``python -m dnabox.provision.agent.server``), ``client`` starts
and reaches it, ``protocol`` is the wire format, ``requests`` parses what clients ask,
``batch`` answers batched requests, ``fleet`` holds the fleet's connections. Kept empty:
the fast ``dnabox exec`` path imports ``client`` and ``protocol`` without anything heavy.
"""

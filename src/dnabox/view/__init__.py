"""`dnabox view`: a live, read-only web view of a fleet (topology, runs, boxes, D-N-A flow).

Layers: ``snapshot`` turns the fleet and what the boxes report into plain JSON-able data;
``bus`` receives the events of runs (``dnabox up`` tees them to the view's socket) and
fans them out; ``server`` serves the pages, the JSON API under ``/api/`` and the live
stream (Server-Sent Events). Nothing here changes the fleet.
"""

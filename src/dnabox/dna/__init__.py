"""The D-N-A layer's programs: data ponds and lake over NATS JetStream, models trained at the
core and served at the edge. ``service`` holds the reference X+AI service that runs in
containers on the boxes (standard library, nats-py and numpy only)."""

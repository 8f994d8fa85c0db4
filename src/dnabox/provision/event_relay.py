"""Tee a run's events to the fleet's live view (`dnabox view`), when one is listening.

The view listens on ``<state dir>/events.sock``; a run connects once at its start and writes
one JSON line per event. The view is optional and must never slow or fail a run: the socket
is non-blocking, and the first write it cannot take drops the view for the rest of the run
(the view then falls back to reading the boxes' state).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from dnabox.provision.events import Event, EventSink

SOCKET_NAME = "events.sock"


def view_socket(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


class EventRelay:
    """An event sink that forwards to ``inner`` and, best effort, to a listening view."""

    def __init__(self, inner: EventSink, state_dir: Path) -> None:
        self.inner = inner
        self._socket: socket.socket | None = None
        path = view_socket(state_dir)
        if not path.exists():
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(0.2)  # a view that does not accept at once is not there
            sock.connect(str(path))
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        self._socket = sock

    @property
    def connected(self) -> bool:
        return self._socket is not None

    def __call__(self, event: Event) -> None:
        self.inner(event)
        if self._socket is None:
            return
        line = (json.dumps(event.as_json(), default=str) + "\n").encode()
        try:
            sent = self._socket.send(line)
        except OSError:
            sent = -1
        if sent != len(line):  # a full buffer or a gone view: stop feeding it, never wait
            self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

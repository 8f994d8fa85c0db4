"""The lab's package repository over HTTP, run inside the router namespace.

`python -m http.server` keeps socketserver's default accept queue of 5 connections and
speaks HTTP/1.0 (a new connection per package): with 100 fresh boxes fetching at once,
boxes saw "connection timed out" and failed their install (measured at N=100). This server
is the same static file handler with a deep accept queue and keep-alive connections.

Usage: python -m dnabox.lab.repo_server --bind ADDRESS --directory DIR PORT
"""

from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ACCEPT_QUEUE = 1024


class RepoServer(ThreadingHTTPServer):
    request_queue_size = ACCEPT_QUEUE
    daemon_threads = True


class KeepAliveHandler(SimpleHTTPRequestHandler):
    # Static files always carry Content-Length, so one connection serves many packages.
    protocol_version = "HTTP/1.1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--directory", required=True)
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    handler = functools.partial(KeepAliveHandler, directory=args.directory)
    with RepoServer((args.bind, args.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()

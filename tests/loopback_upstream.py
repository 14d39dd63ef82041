"""A plain threaded HTTP server on 127.0.0.1 (a free port) for tests that need an upstream of their own: a subclass
builds its request handler, then calls ``super().__init__(handler)``; ``with`` starts and stops it.

The server thread looks whether it is asked to stop every :data:`POLL_S` (socketserver's default, half a second,
was the longest part of many tests that use one)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

POLL_S = 0.01


class LoopbackUpstream:
    """``base_url`` is ``http://127.0.0.1:PORT``; the server thread runs between ``__enter__`` and ``__exit__``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(POLL_S,), daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

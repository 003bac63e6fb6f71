"""A JSON-over-HTTP server on 127.0.0.1: the transport of the fake services tests start."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Call:
    """One request as a fake service sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes


Answer = Callable[[Call], tuple[int, Any]]


def serve(answer: Answer, name: str) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``answer`` (status, JSON body) on a free loopback port; return the server and URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            call = Call(
                self.command,
                unquote(url.path),
                {k: v[-1] for k, v in parse_qs(url.query).items()},
                self.headers,
                self.rfile.read(length) if length else b"",
            )
            status, body = answer(call)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up waiting (timeout tests)
                pass

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    ).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"

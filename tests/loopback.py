"""A real HTTP server on 127.0.0.1 for fetch and webhook tests, scripted per path."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before anything is sent
    drip_s: float = 0.0  # between body bytes, after the headers
    content_length: bool = True


Responder = Callable[[Seen], Route]

# The key the Claid stand-ins accept (tests/conftest.py's `claid`, and the browser test's).
CLAID_KEY = "claid-secret-key-123"


def claid_account(seen: Seen) -> Route:
    """Claid's GET /v1/account: accepts CLAID_KEY, refuses any other key with Claid's error envelope."""
    if seen.headers.get("Authorization") == f"Bearer {CLAID_KEY}":
        return Route(body=json.dumps({"data": {"balance": 100}}).encode())
    body = {"error_code": 111, "error_type": "auth", "error_message": f"invalid API key {seen.headers}"}
    return Route(status=401, body=json.dumps(body).encode())


# Loopback in the spellings the C resolver accepts: each must be refused wherever a URL is checked.
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f.1",
    "017700000001",
    "0.0.0.0",
    "[::1]",
    "[::ffff:127.0.0.1]",
]


class LoopbackServer:
    """Serve scripted answers on 127.0.0.1 and record every request."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route | Responder] = {}
        # Answers a path no route names (a fake's catch-all); None: 404.
        self.fallback: Responder | None = None
        self.requests: list[Seen] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                server.requests.append(seen)
                route = server.routes.get(self.path.split("?", 1)[0]) or server.fallback
                route = route if route is not None else Route(status=404, body=b"not found")
                if callable(route):
                    route = route(seen)
                if route.delay_s and server.stopping.wait(route.delay_s):
                    return
                try:
                    self.send_response(route.status)
                    for name, value in route.headers.items():
                        self.send_header(name, value)
                    if route.content_length:
                        self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    if route.drip_s:
                        for i in range(len(route.body)):
                            self.wfile.write(route.body[i : i + 1])
                            self.wfile.flush()
                            if server.stopping.wait(route.drip_s):
                                return
                    else:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first, which is what several tests want

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/", *, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

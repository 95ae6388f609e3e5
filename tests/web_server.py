"""A scripted web server on 127.0.0.1, run in a thread: the web the fetcher tests, `newsbot add`
and feed syncs see. Never the internet.

    server.page("/story", html)                       # 200, text/html
    server.route("/flaky", Reply(500), Reply(200, body=html))   # in turn; the last repeats
    server.redirect("/old", "/story")                 # 302 to a path or a full URL
    server.route("/slow", Reply(body=html, delay=2))  # answers after 2 s
    server.route("/feed", lambda seen: Reply(...))    # decided per request

Every request is recorded (`requests`, `hits`), with how many were in flight at once
(`peak`). A `Reply` with an `etag` or `last_modified` answers 304 to a request that sends it
back (If-None-Match, If-Modified-Since), as a well-behaved site does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin

HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes | str = b""
    content_type: str | None = HTML
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering at all
    trickle: float = 0.0  # seconds between chunks of the body
    chunk: int = 64 * 1024  # bytes a chunk
    length: bool = True  # send Content-Length; False: the body ends when the connection does
    etag: str | None = None
    last_modified: str | None = None
    drop: bool = False  # close the connection without answering

    def data(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Seen:
    """A request the server received: its path (and query) and headers (lower-case names)."""

    path: str
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival


Route = Reply | Callable[[Seen], Reply]


@dataclass
class _Served:
    """What became of one request: whether its whole body was sent."""

    seen: Seen
    done: threading.Event = field(default_factory=threading.Event)
    complete: bool = False


class WebServer:
    """A scripted HTTP/1.0 server on 127.0.0.1; unknown paths are 404."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Route]] = {}
        self._lock = threading.Lock()
        self._served: list[_Served] = []
        self._in_flight = 0
        self.peak = 0  # the most requests in flight at once
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self._http.block_on_close = False
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    # --- scripting ---------------------------------------------------------------------

    def route(self, path: str, *replies: Route) -> str:
        """Answer `path` with `replies` in turn, the last one from then on; its URL."""
        assert replies, "a route needs at least one reply"
        with self._lock:
            self._routes[path] = list(replies)
        return self.url(path)

    def page(self, path: str, html: str, **reply: object) -> str:
        """An HTML page at `path`; its URL."""
        return self.route(path, Reply(body=html, **reply))  # type: ignore[arg-type]

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        """A redirect from `path` to `to` (a path here, or any URL); its URL."""
        return self.route(path, Reply(status, headers={"Location": to}, content_type=None))

    # --- what was asked ----------------------------------------------------------------

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return [served.seen for served in self._served]

    def hits(self, path: str) -> int:
        """How many requests asked for `path`."""
        return sum(1 for seen in self.requests if seen.path == path)

    def last(self, path: str) -> Seen:
        """The last request for `path`."""
        return [seen for seen in self.requests if seen.path == path][-1]

    def sent_whole_body(self, path: str, wait: float = 5.0) -> bool:
        """Whether the last answer to `path` was sent to its end (waits for it to finish)."""
        with self._lock:
            served = [s for s in self._served if s.seen.path == path][-1]
        assert served.done.wait(wait), f"the answer to {path} never finished"
        return served.complete

    # --- serving -----------------------------------------------------------------------

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def _reply(self, seen: Seen) -> Reply:
        with self._lock:
            routes = self._routes.get(seen.path) or self._routes.get(seen.path.split("?")[0])
            if not routes:
                return Reply(404, body="<html><body><h1>Not Found</h1></body></html>")
            route = routes.pop(0) if len(routes) > 1 else routes[0]
        return route(seen) if callable(route) else route

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        seen = Seen(
            handler.path, {k.lower(): v for k, v in handler.headers.items()}, time.monotonic()
        )
        served = _Served(seen)
        with self._lock:
            self._served.append(served)
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            served.complete = _answer(handler, self._reply(seen), seen)
        except (BrokenPipeError, ConnectionResetError):
            served.complete = False  # the client stopped reading
        finally:
            with self._lock:
                self._in_flight -= 1
            served.done.set()


def _answer(handler: BaseHTTPRequestHandler, reply: Reply, seen: Seen) -> bool:
    """Send `reply`; whether its whole body was sent."""
    if reply.delay:
        time.sleep(reply.delay)
    if reply.drop:
        handler.close_connection = True
        return False
    unchanged = (reply.etag and seen.headers.get("if-none-match") == reply.etag) or (
        reply.last_modified and seen.headers.get("if-modified-since") == reply.last_modified
    )
    status, body = (304, b"") if unchanged else (reply.status, reply.data())
    handler.send_response(status)
    headers = {
        "Content-Type": reply.content_type if status != 304 else None,
        "Content-Length": str(len(body)) if reply.length else None,
        "ETag": reply.etag,
        "Last-Modified": reply.last_modified,
        **reply.headers,
    }
    for name, value in headers.items():
        if value is not None:
            handler.send_header(name, value)
    handler.end_headers()
    for start in range(0, len(body), reply.chunk):
        if reply.trickle and start:
            time.sleep(reply.trickle)
        handler.wfile.write(body[start : start + reply.chunk])
        handler.wfile.flush()
    return True


def _handler(server: WebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server._serve(self)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet

    return Handler


@contextmanager
def serving() -> Iterator[WebServer]:
    """A started `WebServer`, stopped afterwards."""
    server = WebServer().start()
    try:
        yield server
    finally:
        server.stop()

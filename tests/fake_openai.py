"""An in-process fake of an OpenAI-compatible server, for the real `ChatOpenAI` client.

It listens on 127.0.0.1 (its own thread, so a subprocess reaches it as well as the test) and
answers `POST /v1/chat/completions` from a script: each `Reply` is a status, a body (or a
function of the request, to cite the passages by the numbers they were sent under) and an
optional delay. Every request is recorded, headers included, so tests can assert what was
sent to the provider.

`ChatOpenAI.with_structured_output(LlmAnswer)` (langchain-openai 1.x, method `json_schema`)
sends `response_format: {"type": "json_schema", ...}` and reads the JSON object from the
message's `content`; `answer_with` builds such a reply.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLETIONS = "/v1/chat/completions"
DRIP_EVERY = 0.1  # seconds between the bytes of a dripping reply
MODEL = "newsroom-model"
_PASSAGE = re.compile(r'^<passage n="(\d+)"[^\n]*>\n(.*?)\n</passage>$', re.S | re.M)

Body = dict[str, Any] | str


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """Everything the messages said, one after the other."""
        return "\n".join(str(m.get("content")) for m in self.body.get("messages", []))

    def passages(self) -> dict[int, str]:
        """The passages sent, by the number the model was shown."""
        return {int(m[1]): m[2] for m in _PASSAGE.finditer(self.text)}

    def number_of(self, words: str) -> int:
        """The number the passage holding `words` was sent under."""
        found = [n for n, text in self.passages().items() if words in text]
        assert len(found) == 1, (words, self.passages())
        return found[0]


@dataclass(frozen=True)
class Reply:
    """One scripted reply: `status`, then `body` (JSON if a dict; a function of the request
    gives it), after `delay` seconds. With `drip`, the body is preceded by spaces sent one
    every `DRIP_EVERY` seconds for `drip` seconds: each read comes well within a client's
    read timeout, the whole reply does not."""

    body: Body | Callable[[Request], Body] = ""
    status: int = 200
    delay: float = 0.0
    drip: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def completion(content: str) -> dict[str, Any]:
    """A chat completion whose message says `content`."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


Claim = tuple[str, str, str]  # (sentence, words of the cited passage, quote)


def answer_with(*claims: Claim | tuple[str, int, str], not_covered: bool = False) -> Reply:
    """A reply holding an `LlmAnswer`. Each claim cites the passage holding the given words
    (as the request numbered it), or a number given as is."""

    def body(request: Request) -> Body:
        made = [
            {
                "text": text,
                "sources": [cited if isinstance(cited, int) else request.number_of(cited)],
                "quote": quote,
            }
            for text, cited, quote in claims
        ]
        return completion(json.dumps({"not_covered": not_covered, "claims": made}))

    return Reply(body)


def error(status: int, message: str, **headers: str) -> Reply:
    """An error reply as OpenAI words it."""
    return Reply(
        {"error": {"message": message, "type": "error", "code": None}}, status, headers=headers
    )


class FakeOpenAI:
    """Answers chat completions from `script`, in order; records every request."""

    def __init__(self, script: list[Reply]) -> None:
        self.script = list(script)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-openai", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL to give the client (`NEWSBOT_LLM_BASE_URL`)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # replies still waiting out their delay end now
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if request.path != COMPLETIONS:
                return error(404, f"no route {request.path}")
            if not self.script:
                return error(500, "the script has no more replies")
            return self.script.pop(0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request("POST", self.path, headers, json.loads(raw))
                reply = fake._next(request)
                if reply.delay and fake._stopping.wait(reply.delay):
                    return
                body = reply.body(request) if callable(reply.body) else reply.body
                data = (json.dumps(body) if isinstance(body, dict) else body).encode()
                drips = round(reply.drip / DRIP_EVERY)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(drips + len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    for _ in range(drips):  # JSON may start with any amount of whitespace
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        if fake._stopping.wait(DRIP_EVERY):
                            return
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test asserts on the requests

        return Handler


@contextmanager
def serving(script: list[Reply]) -> Iterator[FakeOpenAI]:
    """A fake OpenAI-compatible server answering from `script` for the block."""
    server = FakeOpenAI(script)
    server.start()
    try:
        yield server
    finally:
        server.stop()

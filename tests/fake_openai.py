"""An in-process fake of an OpenAI-compatible server, for the real `ChatOpenAI` client.

It listens on 127.0.0.1 (its own thread, so a subprocess reaches it as well as the test) and
answers `POST /v1/chat/completions` from a script: each `Reply` is a status, a body (or a
function of the request, to cite the passages by the numbers they were sent under) and an
optional delay. Every request is recorded, headers included, so tests can assert what was
sent to the provider.

newsbot asks with `response_format: {"type": "json_schema", ...}` (what
`ChatOpenAI.with_structured_output(LlmAnswer)` sends, langchain-openai 1.x) and reads the JSON
object from the message's `content`; `answer_with` builds such a reply. A script's entry may
also be a function of the request giving the reply: `Server.answering` replays how a real
server answers each response format (`SERVERS`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLETIONS = "/v1/chat/completions"
DRIP_EVERY = 0.1  # seconds between the bytes of a dripping reply
MODEL = "newsroom-model"
_PASSAGE = re.compile(r'^<passage n="(\d+)"[^\n]*>\n(.*?)\n</passage>$', re.S | re.M)

Body = dict[str, Any] | str
NO_FORMAT = "none"  # a request without response_format


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

    @property
    def response_format(self) -> str:
        """The type of `response_format` asked for: json_schema, json_object, or none."""
        asked = self.body.get("response_format") or {}
        return str(asked.get("type", NO_FORMAT))

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


def completion(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    """A chat completion whose message says `content`; `finish_reason` "length" when the
    model ran to its token cap."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
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


def in_prose(reply: Reply) -> Reply:
    """`reply`'s message as a chat model writes it when nothing holds it to JSON: a sentence,
    the JSON in a ```json fence, another sentence."""

    def body(request: Request) -> Body:
        made = reply.body(request) if callable(reply.body) else reply.body
        assert isinstance(made, dict)
        content = made["choices"][0]["message"]["content"]
        return completion(
            f"Here is the answer, from the passages given:\n\n```json\n{content}\n```\n\n"
            "Each quote is copied from its passage."
        )

    return Reply(body, reply.status, reply.delay, reply.drip, reply.headers)


@dataclass(frozen=True)
class Server:
    """How one OpenAI-compatible server answers each response format (`Request.response_format`):
    the error it sends (`rejects`), else the model's reply, written freely (`in_prose`) under
    the formats that do not hold the model to JSON (`free`)."""

    name: str
    rejects: dict[str, Reply] = field(default_factory=dict)
    free: tuple[str, ...] = (NO_FORMAT,)

    def answering(self, answer: Reply) -> Callable[[Request], Reply]:
        """A script entry: this server's reply to a request, `answer` once it takes the
        format."""

        def reply(request: Request) -> Reply:
            asked = request.response_format
            if asked in self.rejects:
                return self.rejects[asked]
            return in_prose(answer) if asked in self.free else answer

        return reply


# What each server answers, as it sends it (status and body), with where that was read.
# llama-cpp-python's server (`python -m llama_cpp.server`, 0.3.x): its request model allows
# response_format types "text" and "json_object" only; FastAPI's validation error is caught by
# its RouteErrorHandler (llama_cpp/server/errors.py) and sent as a 500 internal_server_error
# (ggml-org/llama.cpp issue 23463, 0.3.23). This body is what 0.3.36 sent here (docs/llm.md,
# "Servers and models tried"), its install path shortened. json_object is held to JSON by a
# grammar.
LLAMA_CPP_PYTHON_REJECTS_JSON_SCHEMA = Reply(
    {
        "error": {
            "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
            "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
            "'input': 'json_schema', 'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n  "
            'File "/venv/lib/python3.11/site-packages/llama_cpp/server/app.py", line 376, in '
            "create_chat_completion\n    POST /v1/chat/completions",
            "type": "internal_server_error",
            "param": None,
            "code": None,
        }
    },
    500,
)
# llama.cpp's llama-server before json_schema support (b3777 and earlier, 2024; ik_llama.cpp
# later still): ggml-org/llama.cpp issue 9522, ikawrakow/ik_llama.cpp issue 778.
OLD_LLAMA_SERVER_REJECTS_JSON_SCHEMA = Reply(
    {
        "error": {
            "code": 500,
            "message": 'response_format type must be one of "text" or "json_object", but got: '
            "json_schema",
            "type": "server_error",
        }
    },
    500,
)
# vLLM (0.8.x, xgrammar the default guided-decoding backend) for a schema xgrammar cannot
# compile: 400, its error at the top level (vllm-project/vllm issue 16321).
VLLM_REJECTS_SCHEMA = Reply(
    {
        "object": "error",
        "message": "The provided JSON schema contains features not supported by xgrammar.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    },
    400,
)
# A gateway that takes no response_format at all (scripted, not a server named here).
NO_RESPONSE_FORMAT = Reply(
    {
        "error": {
            "message": "response_format is not supported for this model",
            "type": "invalid_request_error",
            "param": "response_format",
            "code": None,
        }
    },
    400,
)

SERVERS = {
    # A recent llama-server turns the schema into a grammar: json_schema is taken.
    "llama-server": Server("llama-server"),
    "llama-server-2024": Server(
        "llama-server (b3777)", {"json_schema": OLD_LLAMA_SERVER_REJECTS_JSON_SCHEMA}
    ),
    "llama-cpp-python": Server(
        "llama-cpp-python", {"json_schema": LLAMA_CPP_PYTHON_REJECTS_JSON_SCHEMA}
    ),
    # Ollama's /v1/chat/completions: json_schema's schema becomes its `format`, json_object
    # "json" (openai/openai.go, FromChatRequest).
    "ollama": Server("Ollama"),
    # Before that, Ollama's OpenAI endpoint ignored json_schema: HTTP 200, the model writing
    # freely (callstackincubator/fabrice-ai pull request 118, December 2024).
    "ollama-2024": Server("Ollama (2024)", free=("json_schema", NO_FORMAT)),
    "vllm": Server("vLLM"),
    "vllm-xgrammar": Server(
        "vLLM, a schema xgrammar cannot take", {"json_schema": VLLM_REJECTS_SCHEMA}
    ),
    "no-response-format": Server(
        "a gateway without response_format",
        {"json_schema": NO_RESPONSE_FORMAT, "json_object": NO_RESPONSE_FORMAT},
    ),
}


Scripted = Reply | Callable[[Request], Reply]


class FakeOpenAI:
    """Answers chat completions from `script`, in order; records every request."""

    def __init__(self, script: Sequence[Scripted]) -> None:
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
            scripted = self.script.pop(0)
            return scripted(request) if callable(scripted) else scripted

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
def serving(script: Sequence[Scripted]) -> Iterator[FakeOpenAI]:
    """A fake OpenAI-compatible server answering from `script` for the block."""
    server = FakeOpenAI(script)
    server.start()
    try:
        yield server
    finally:
        server.stop()

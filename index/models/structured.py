"""Asking a chat model for an object of a schema, on servers that disagree about how to ask.

"OpenAI-compatible" promises the URL and the shape of a message, not structured output. So an
OpenAI-compatible model (`ChatOpenAI`, and so `NEWSBOT_LLM_BASE_URL`) is asked in the first
of these ways its server accepts, strongest first:

1. `json_schema`: `response_format` with the schema (what `with_structured_output` sends):
   OpenAI, vLLM, recent llama.cpp `llama-server` and Ollama. `llama-cpp-python`'s server
   answers it with HTTP 500, vLLM with 400 for a schema its grammar engine cannot take.
2. `json_object`: any JSON, the schema described in the prompt (`llama-cpp-python`, older
   `llama-server`).
3. `prompt`: no `response_format` at all, the schema in the prompt.

A server rejects a way when it answers HTTP 400, 422 or 500 naming the response format
(`REJECTION_STATUSES`, `REJECTION_WORDS`). What a server accepted is remembered for the
process (`FormatMemory`, per model and base URL), so later questions go straight to it.
Another provider's model is asked through its own `with_structured_output`, else through
the prompt. Whatever the way, the reply is read leniently: JSON alone, in a ```json fence
or inside prose. Every request of one answer shares one deadline (`chat.Deadline`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from contextlib import suppress
from functools import partial
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_function
from langchain_core.utils.json import parse_json_markdown
from pydantic import BaseModel

from index.models.chat import Deadline, ModelCallError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

JSON_SCHEMA = "json_schema"  # response_format {"type": "json_schema", ...}
JSON_OBJECT = "json_object"  # response_format {"type": "json_object"}, the schema in the prompt
OWN = "structured output"  # another provider's own with_structured_output (tools, format...)
PROMPT = "prompt"  # the schema in the prompt only
OPENAI_FORMATS = (JSON_SCHEMA, JSON_OBJECT, PROMPT)

# How a server says it does not take a response format: one of these statuses (llama-cpp-python
# answers 500, its FastAPI validation error caught as an internal one; vLLM and llama-server
# 400; a strict validator 422) with one of these words in its body.
REJECTION_STATUSES = (400, 422, 500)
REJECTION_WORDS = ("response_format", "json_schema", "json schema", "json_object", "grammar")

Key = tuple[str, str, str]
FENCED = re.compile(r"```(?:json)?[ \t]*\n?(.*?)```", re.S | re.I)  # a Markdown code block


class FormatRejected(ModelCallError):
    """The server rejected the way the model was asked for JSON (`fmt`)."""

    def __init__(self, fmt: str, status: int) -> None:
        super().__init__(f"the server rejected response format {fmt} (HTTP {status})")
        self.fmt = fmt
        self.status = status


class FormatMemory:
    """The way each server (model and base URL) last accepted, for the life of the process."""

    def __init__(self) -> None:
        self._accepted: dict[Key, str] = {}
        self._lock = threading.Lock()

    def get(self, key: Key) -> str | None:
        with self._lock:
            return self._accepted.get(key)

    def remember(self, key: Key, fmt: str) -> None:
        with self._lock:
            self._accepted[key] = fmt

    def forget(self) -> None:
        with self._lock:
            self._accepted.clear()


PROCESS_MEMORY = FormatMemory()
"""What this process learnt of its servers: each `StructuredAsk` shares it unless given
another, so a new `Newsbot` (the eval makes several) does not ask a server again what it
rejected."""


class StructuredAsk(Generic[M]):
    """Asks a chat model for one `schema` object, in the strongest way its server accepts."""

    def __init__(
        self,
        model: BaseChatModel,
        schema: type[M],
        *,
        max_chars: int,
        memory: FormatMemory = PROCESS_MEMORY,
    ) -> None:
        """Args:
        model: the chat model.
        schema: the pydantic model of the reply.
        max_chars: a reply longer than this is not read.
        memory: where the way each server accepted is kept.
        """
        self.model = model
        self.schema = schema
        self.max_chars = max_chars
        self.memory = memory
        self.key = server_key(model)
        self.instructions = PydanticOutputParser(pydantic_object=schema).get_format_instructions()
        self.ways: dict[str, Runnable[Any, Any]] = {}
        if is_openai_compatible(model):
            self.ways[JSON_SCHEMA] = model.bind(response_format=json_schema_format(schema))
            self.ways[JSON_OBJECT] = model.bind(response_format={"type": JSON_OBJECT})
        else:
            with suppress(NotImplementedError):  # no tool calling: the prompt only
                self.ways[OWN] = model.with_structured_output(schema)
        self.ways[PROMPT] = model

    @property
    def formats(self) -> tuple[str, ...]:
        """The ways to ask, strongest first."""
        return tuple(self.ways)

    def first_format(self) -> str:
        """The way the next question is asked: the one this server accepted, else the first."""
        remembered = self.memory.get(self.key)
        return remembered if remembered in self.ways else self.formats[0]

    def ask(self, messages: Sequence[BaseMessage], deadline: Deadline) -> M:
        """The model's reply to `messages` as a `schema` object.

        Raises:
            ModelCallError: every way was rejected, a request failed or the deadline passed.
            ValueError (json.JSONDecodeError, pydantic.ValidationError): no `schema` object
            in the reply.
        """
        formats = self.formats
        for fmt in formats[formats.index(self.first_format()) :]:
            sent = self.messages_for(fmt, messages)
            try:
                reply = deadline.call(partial(self._request, fmt, sent))
            except FormatRejected as rejected:
                log.info("language model: %s; asking the next way", rejected)
                continue
            if self.memory.get(self.key) != fmt:
                self.memory.remember(self.key, fmt)
            return self.read(reply)
        raise ModelCallError("the server rejected every response format")

    def messages_for(self, fmt: str, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
        """`messages`, with the schema described in the system message when `fmt` does not
        give it to the server."""
        if fmt not in (JSON_OBJECT, PROMPT):
            return list(messages)
        sent = list(messages)
        for n, message in enumerate(sent):
            if isinstance(message, SystemMessage):  # one system message, first: some chat
                content = f"{message.content}\n\n{self.instructions}"  # templates take no other
                sent[n] = SystemMessage(content)
                return sent
        return [SystemMessage(self.instructions), *sent]

    def _request(self, fmt: str, messages: list[BaseMessage]) -> Any:
        try:
            return self.ways[fmt].invoke(messages)
        except Exception as exc:
            status = http_status(exc)
            if fmt != PROMPT and status is not None and rejects_format(exc, status):
                raise FormatRejected(fmt, status) from None
            raise

    def read(self, reply: Any) -> M:
        """The `schema` object in `reply`: a message's JSON (read leniently), or what a
        provider's structured output parsed."""
        if isinstance(reply, AIMessage):  # bounded before it is parsed
            return self.schema.model_validate(json_in(self._bounded(reply.text)))
        parsed = reply if isinstance(reply, self.schema) else self.schema.model_validate(reply)
        self._bounded(parsed.model_dump_json())
        return parsed

    def _bounded(self, text: str) -> str:
        """`text`, unless it is longer than `max_chars` (a server that ignores the token
        cap, or a model that runs on).

        Raises:
            ModelCallError: it is.
        """
        if len(text) > self.max_chars:
            raise ModelCallError(
                f"reply too long ({len(text)} characters, over NEWSBOT_LLM_MAX_TOKENS's "
                f"{self.max_chars})"
            )
        return text


def json_in(text: str) -> Any:
    """The JSON value `text` holds: all of it or a ```json fence ending it (LangChain's
    `parse_json_markdown`), a fenced block amid prose, or from its first `{` to its last `}`.

    Raises:
        json.JSONDecodeError: none of these is JSON.
    """
    try:
        return parse_json_markdown(text, parser=json.loads)
    except json.JSONDecodeError as exc:
        failed = exc
    for block in FENCED.findall(text):
        try:
            return json.loads(block)
        except json.JSONDecodeError:
            continue
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise failed
    return json.loads(text[start : end + 1])


def json_schema_format(schema: type[BaseModel]) -> dict[str, Any]:
    """The `response_format` asking for `schema`, as `with_structured_output` makes it (strict:
    every field required, no others), given as a dict so that the client sends it and leaves
    the reply to `StructuredAsk.read`."""
    function = convert_to_openai_function(schema, strict=True)
    return {
        "type": JSON_SCHEMA,
        "json_schema": {
            "name": function["name"],
            "description": function.get("description", ""),
            "schema": function["parameters"],
            "strict": True,
        },
    }


def is_openai_compatible(model: BaseChatModel) -> bool:
    """Whether `model` speaks OpenAI's chat completions (`ChatOpenAI` and its kin)."""
    try:
        from langchain_openai.chat_models.base import BaseChatOpenAI
    except ImportError:
        return False
    return isinstance(model, BaseChatOpenAI)


def server_key(model: BaseChatModel) -> Key:
    """What tells one server (and model) from another: its class, model name and base URL."""
    name = getattr(model, "model_name", None) or getattr(model, "model", None) or ""
    url = getattr(model, "openai_api_base", None) or getattr(model, "base_url", None) or ""
    return (type(model).__name__, str(name), str(url))


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a client's error, if it has one."""
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None
    )
    return status if isinstance(status, int) else None


def rejects_format(exc: BaseException, status: int) -> bool:
    """Whether an HTTP error says the server does not take the response format asked for:
    read here only, never logged (it may quote the request)."""
    if status not in REJECTION_STATUSES:
        return False
    said = f"{getattr(exc, 'body', '')} {getattr(exc, 'message', '')}".lower()
    return any(word in said for word in REJECTION_WORDS)

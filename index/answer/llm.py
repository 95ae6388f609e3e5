"""The optional language-model answer step: a chat model writes the answer, every citation
checked (`index.answer.citations`), the offline answer on any failure.

The model sees the numbered passages (title, outlet, date, text) and the date of the
question, and returns an `LlmAnswer`. Whatever goes wrong (an error, a timeout, a rate
limit, output that is not an `LlmAnswer`, nothing verified) the user gets the extractive
answer, and one log line says what went wrong, never the key or the passages.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import replace
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.runnables import Runnable

from index.answer.citations import LlmAnswer, answer_or_fallback
from index.answer.types import MODEL_FAILED, NO_PASSAGES, NOTHING_VERIFIED, Answer, Answerer
from index.errors import ConfigError
from index.search.retrieval import Hit
from index.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

SYSTEM = """\
You answer questions about news from the numbered passages given, and from nothing else.
Answer in a few short sentences. Give each sentence the numbers of the passages that support \
it and the exact words, copied from one of those passages, that it rests on (at least three \
words, no ellipsis). Do not put passage numbers in the sentences. Mind the dates: the question \
was asked on the date given, and a passage speaks as of its own date. If the passages do not \
answer the question, set not_covered to true and give no claims."""

# `init_chat_model`'s provider → the extra that installs it.
EXTRAS = {"openai": "openai", "ollama": "ollama", "anthropic": "anthropic"}
# Providers whose client retries a failed call by itself (`max_retries`, default 2): on a 429
# it waits as long as the server's Retry-After says (up to two minutes), so the user would wait
# out NEWSBOT_LLM_TIMEOUT for the offline answer, and the call would hold a model thread long
# after. The offline answer is the retry: one request a question, and the next question tries
# again.
NO_CLIENT_RETRIES = ("openai", "anthropic")
HTTP_ERRORS = 400  # the first HTTP status that is an error


class LlmAnswerer:
    """Has a chat model write the answer, every citation checked; the offline answer when
    the model fails or nothing it says verifies."""

    def __init__(self, model: BaseChatModel, offline: Answerer, *, timeout: float) -> None:
        """Args:
        model: the chat model (`load_llm`, or a fake in tests).
        offline: the extractive answer step, the fallback.
        timeout: seconds to wait for the model, whatever its own timeout.
        """
        self.model = model
        self.offline = offline
        self.timeout = timeout
        self.structured: Runnable[Any, Any]
        self.parser: PydanticOutputParser[LlmAnswer] | None
        try:
            self.structured = model.with_structured_output(LlmAnswer)
            self.parser = None
        except NotImplementedError:  # no tool calling: ask for JSON in the prompt, parse it
            self.parser = PydanticOutputParser(pydantic_object=LlmAnswer)
            self.structured = model | self.parser

    def compose(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        limit: int | None = None,
        asked_on: str | None = None,
    ) -> Answer:
        """The model's answer to `question` from the best `limit` of `hits`, every citation
        checked, or the offline answer; `asked_on` (ISO date) is when it was asked, by
        default today."""
        offline = self.offline.compose(question, hits, limit=limit)
        shown = list(hits[: limit or len(hits)])
        if not shown:
            return replace(offline, fallback=NO_PASSAGES)
        failed = replace(offline, fallback=MODEL_FAILED)
        messages = self.messages(question, shown, asked_on or dt.date.today().isoformat())
        try:
            reply = call_model(lambda: self.structured.invoke(messages), self.timeout)
            if not isinstance(reply, LlmAnswer):
                reply = LlmAnswer.model_validate(reply)
        except Exception as exc:  # any failure of the model is the offline answer
            kind = exc if isinstance(exc, ModelCallError) else failure_kind(exc)
            log.warning("language model: %s; the offline answer", kind)
            return failed
        answer = answer_or_fallback(question, reply, shown, offline)
        if answer.fallback == NOTHING_VERIFIED:
            log.warning(
                "language model: none of its %d claim(s) verified; the offline answer",
                answer.dropped_claims,
            )
        return answer

    def messages(self, question: str, hits: Sequence[Hit], asked_on: str) -> list[Any]:
        """What the model is sent: the instructions, the numbered passages, the question."""
        system = SYSTEM
        if self.parser is not None:
            system += "\n\n" + self.parser.get_format_instructions()
        passages = "\n\n".join(_passage(n, hit) for n, hit in enumerate(hits, start=1))
        return [
            SystemMessage(system),
            HumanMessage(f"Passages:\n\n{passages}\n\nAsked on {asked_on}: {question}"),
        ]


class ModelCallError(Exception):
    """A model call failed or timed out; the message says how in a few words, never with
    the request (the passages) or a key."""


def call_model(call: Callable[[], T], timeout: float) -> T:
    """`call()` (a request to the model) on a daemon thread, waited for at most `timeout`
    seconds, whatever the client's own timeout.

    Raises:
        ModelCallError: it raised, or gave no reply in time (it runs on; nobody waits).
    """
    future = on_a_thread(call)
    if not wait([future], timeout=timeout).done:
        raise ModelCallError(f"timed out, no answer in {timeout:g} s")
    try:
        return future.result()
    except Exception as exc:
        raise ModelCallError(failure_kind(exc)) from None


def on_a_thread(call: Callable[[], T]) -> Future[T]:
    """`call()` on a daemon thread of its own: a call that outlives the timeout (a server
    sending its reply a byte at a time never trips the client's read timeout) ends when it
    ends, without keeping the process alive, so `newsbot ask` exits once it has answered."""
    future: Future[T] = Future()

    def run() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(call())
        except BaseException as exc:  # handed to whoever waits: `compose`, or nobody
            future.set_exception(exc)

    threading.Thread(target=run, name="newsbot-llm", daemon=True).start()
    return future


def _passage(n: int, hit: Hit) -> str:
    article = hit.passage.article
    about = ", ".join(
        part for part in (article.source, article.published or "date unknown") if part
    )
    return f"[{n}] {article.title} ({about})\n{hit.passage.chunk.text}"


def failure_kind(exc: BaseException) -> str:
    """The kind of failure, in a few words: never the exception's message, which may hold
    the request (and so the passages) or a key."""
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None
    )
    if isinstance(status, int) and status < HTTP_ERRORS:
        # ChatOpenAI attaches the HTTP response to any exception, a reply it could not
        # parse too (200 OK): the reply's content was the failure, not the HTTP call.
        status = None
    name = type(exc).__name__
    if status == 429 or "RateLimit" in name:
        return f"rate limited ({name})"
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return f"timed out ({name})"
    if status is not None:
        return f"HTTP {status} ({name})"
    if "Parser" in name or "Validation" in name or "JSON" in name:
        return f"malformed output ({name})"
    return f"failed ({name})"


def provider_of(name: str) -> str:
    """The provider of the model `name`: `provider:model`, or as `init_chat_model` infers it
    from the model's name (claude-… is Anthropic's; gpt-…, o1… and most others OpenAI's)."""
    if ":" in name:
        return name.split(":", 1)[0].strip().lower()
    return "anthropic" if name.lower().startswith("claude") else "openai"


def install_hint(name: str) -> str:
    """What to install for the model `name`: newsbot's extra, or LangChain's package."""
    provider = provider_of(name)
    if provider in EXTRAS:
        return f"pip install 'newsbot[{EXTRAS[provider]}]'"
    return f"pip install langchain langchain-{provider.replace('_', '-')}"


def load_llm(settings: Settings) -> BaseChatModel | None:
    """The chat model `NEWSBOT_LLM` names, or None when it is empty.

    Raises:
        ConfigError: the provider's package is not installed, or the name is not one
        `init_chat_model` knows.
    """
    name = settings.llm.strip()
    if not name:
        return None
    provider = provider_of(name)
    missing = f"NEWSBOT_LLM is set but its provider package is missing: {install_hint(name)}"
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:
        raise ConfigError(missing) from exc
    kwargs: dict[str, Any] = {
        "timeout": settings.llm_timeout,
        "max_tokens": settings.llm_max_tokens,
    }
    if provider in NO_CLIENT_RETRIES:
        kwargs["max_retries"] = 0
    if settings.llm_base_url:
        kwargs["base_url"] = settings.llm_base_url
    if settings.llm_api_key is not None:
        kwargs["api_key"] = settings.llm_api_key.get_secret_value()
    try:
        model: BaseChatModel = init_chat_model(name, **kwargs)
    except ImportError as exc:
        raise ConfigError(missing) from exc
    except ValueError as exc:  # its message may quote the arguments: not shown
        raise ConfigError(
            f"NEWSBOT_LLM={name!r} is not a model init_chat_model knows (provider:model)"
        ) from exc
    return model

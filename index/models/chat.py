"""The optional chat model (`NEWSBOT_LLM`): loaded from the settings through LangChain's
`init_chat_model`, and called within a timeout whatever its client's own.

LangChain is imported only when a model is loaded: the offline answer never needs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any, TypeVar

from index.errors import ConfigError
from index.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

T = TypeVar("T")

# `init_chat_model`'s provider → the extra that installs it.
EXTRAS = {"openai": "openai", "ollama": "ollama", "anthropic": "anthropic"}
# Providers whose client retries a failed call by itself (`max_retries`, default 2): on a 429
# it waits as long as the server's Retry-After says (up to two minutes), so the user would wait
# out NEWSBOT_LLM_TIMEOUT for the offline answer, and the call would hold a model thread long
# after. The offline answer is the retry: one request a question, and the next question tries
# again.
NO_CLIENT_RETRIES = ("openai", "anthropic")
HTTP_ERRORS = 400  # the first HTTP status that is an error


class ModelCallError(Exception):
    """A model call failed or timed out; the message says how in a few words, never with
    the request (the passages) or a key."""


class Deadline:
    """One time limit for everything a request takes, however many calls it makes: an answer
    that falls back from one response format to the next waits `seconds` in all, not per
    call."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.ends = clock() + seconds

    def left(self) -> float:
        """Seconds left, 0 once past."""
        return max(0.0, self.ends - self.clock())

    def call(self, call: Callable[[], T]) -> T:
        """`call()` (a request to the model) on a daemon thread, waited for at most the time
        left, whatever the client's own timeout.

        Raises:
            ModelCallError: it raised (a `ModelCallError` as it is, any other exception as
            its kind), or gave no reply in time (it runs on; nobody waits).
        """
        timed_out = ModelCallError(f"timed out, no answer in {self.seconds:g} s")
        left = self.left()
        if left <= 0:
            raise timed_out
        future = on_a_thread(call)
        if not wait([future], timeout=left).done:
            raise timed_out
        try:
            return future.result()
        except ModelCallError:
            raise
        except Exception as exc:
            raise ModelCallError(failure_kind(exc)) from None


def call_model(call: Callable[[], T], timeout: float) -> T:
    """`call()` (a request to the model) on a daemon thread, waited for at most `timeout`
    seconds, whatever the client's own timeout.

    Raises:
        ModelCallError: it raised, or gave no reply in time (it runs on; nobody waits).
    """
    return Deadline(timeout).call(call)


def on_a_thread(call: Callable[[], T]) -> Future[T]:
    """`call()` on a daemon thread of its own: a call that outlives the timeout (a server
    sending its reply a byte at a time never trips the client's read timeout) ends when it
    ends, without keeping the process alive, so `newsbot ask` exits once it has answered."""
    future: Future[T] = Future()

    def run() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(call())
        except BaseException as exc:  # handed to whoever waits: `call_model`, or nobody
            future.set_exception(exc)

    threading.Thread(target=run, name="newsbot-llm", daemon=True).start()
    return future


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
    if "LengthFinishReason" in name:  # openai's client, on finish_reason "length"
        return f"cut off at NEWSBOT_LLM_MAX_TOKENS ({name})"
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


def load_chat_model(settings: Settings) -> BaseChatModel | None:
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
    if settings.llm_temperature is not None:
        kwargs["temperature"] = settings.llm_temperature
    if provider in NO_CLIENT_RETRIES:
        kwargs["max_retries"] = 0
    if settings.llm_base_url:
        kwargs["base_url"] = settings.llm_base_url
        if provider == "openai":
            # ChatOpenAI sends the cap as `max_completion_tokens` only, which llama-cpp-python's
            # server and Ollama ignore (they read `max_tokens`): one ran 3,331 tokens past 600.
            kwargs["extra_body"] = {"max_tokens": settings.llm_max_tokens}
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

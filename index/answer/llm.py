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
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.output_parsers import PydanticOutputParser

from index.answer.citations import LlmAnswer, answer_or_fallback
from index.answer.types import MODEL_FAILED, NO_PASSAGES, NOTHING_VERIFIED, Answer, Answerer
from index.models.chat import Deadline, ModelCallError, failure_kind
from index.models.structured import StructuredAsk
from index.search.retrieval import Hit
from index.settings import Settings

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 6
"""A reply's characters allowed per token of NEWSBOT_LLM_MAX_TOKENS: English text averages
about 4 characters a token; the rest is room for the reply's JSON and other languages. A
server that ignores `max_tokens` (or a model that runs on) gives a reply past this, which is
not read: the offline answer is shown."""

SYSTEM = """\
You answer questions about news from the numbered passages given, and from nothing else.
Answer in a few short sentences. Give each sentence the numbers of the passages that support \
it and the exact words, copied from one of those passages, that it rests on (at least three \
words, no ellipsis). Do not put passage numbers in the sentences. Mind the dates: the question \
was asked on the date given, and a passage speaks as of its own date. If the passages do not \
answer the question, set not_covered to true and give no claims."""


class LlmAnswerer:
    """Has a chat model write the answer, every citation checked; the offline answer when
    the model fails or nothing it says verifies."""

    def __init__(
        self,
        model: BaseChatModel,
        offline: Answerer,
        *,
        timeout: float,
        max_tokens: int = Settings.model_fields["llm_max_tokens"].default,
    ) -> None:
        """Args:
        model: the chat model (`index.models.chat.load_chat_model`, or a fake in tests).
        offline: the extractive answer step, the fallback.
        timeout: seconds to wait for the model's answer in all (every request it takes),
            whatever the client's own timeout.
        max_tokens: the most tokens the model may write (NEWSBOT_LLM_MAX_TOKENS): a longer
            reply (`CHARS_PER_TOKEN`) is not used.
        """
        self.model = model
        self.offline = offline
        self.timeout = timeout
        self.max_chars = max_tokens * CHARS_PER_TOKEN
        # The schema goes to the server as a response format, or in the prompt when the
        # server takes none (`StructuredAsk.messages_for` adds it then); never here.
        self.parser: PydanticOutputParser[LlmAnswer] | None = None
        self.asker = StructuredAsk(model, LlmAnswer, max_chars=self.max_chars)

    def warm_up(self) -> None:
        """Load the fallback's models now."""
        warm_offline = getattr(self.offline, "warm_up", None)
        if warm_offline is not None:
            warm_offline()

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
            # One deadline for every request: a server may reject a response format first.
            reply = self.asker.ask(messages, Deadline(self.timeout))
        except Exception as exc:  # any failure of the model is the offline answer
            kind = exc if isinstance(exc, ModelCallError) else failure_kind(exc)
            log.warning("language model: %s; the offline answer", kind)
            return failed
        size = len(reply.model_dump_json())
        if size > self.max_chars:
            log.warning(
                "language model: reply too long (%d characters, over NEWSBOT_LLM_MAX_TOKENS"
                "'s %d); the offline answer",
                size,
                self.max_chars,
            )
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


def _passage(n: int, hit: Hit) -> str:
    article = hit.passage.article
    about = ", ".join(
        part for part in (article.source, article.published or "date unknown") if part
    )
    return f"[{n}] {article.title} ({about})\n{hit.passage.chunk.text}"

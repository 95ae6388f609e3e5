"""`AnsweringBot`: what the cog and the buttons need of the client that runs them.

`bot.app.NewsbotBot` is one; `bot.ask` and `bot.views` name only this, so the imports inside
`bot/` run one way (app → ask, views → services).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import discord

from bot.feedback import FeedbackLog, StoredAnswer
from bot.ratelimit import RateLimiter
from bot.settings import BotSettings
from index.answer.conversation import Turn


class AnsweringBot(Protocol):
    """The Discord client answering questions, as its cog and buttons see it."""

    settings: BotSettings
    feedback: FeedbackLog
    limiter: RateLimiter

    def get_partial_messageable(self, id: int, /) -> discord.PartialMessageable:
        """A channel to fetch messages from by its id."""
        ...

    @property
    def user(self) -> discord.ClientUser | None:
        """The bot's own user once logged in."""
        ...

    def channel_allowed(self, channel: Any) -> bool:
        """Whether questions may be answered in `channel`."""
        ...

    async def answer(
        self,
        question: str,
        *,
        user_id: int,
        channel: Any,
        history: Sequence[Turn] = (),
        asked_on: str | None = None,
    ) -> StoredAnswer:
        """Answer `question` (a follow-up to `history`, oldest turn first; asked on the ISO
        date `asked_on`, by default today) off the event loop and record it."""
        ...

    async def report_interaction_failure(
        self, interaction: discord.Interaction[Any], error: Exception
    ) -> None:
        """Tell the user of an interaction that it failed."""
        ...

    async def report_message_failure(self, message: discord.Message, error: Exception) -> None:
        """Tell the author of a message that answering it failed."""
        ...

"""The buttons under an answer: 👍 / 👎 feedback and "More sources".

They are dynamic items: the answer id rides in the button's custom id, so buttons keep working
after the bot restarts (the answer itself is in the feedback log).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import discord

from bot.feedback import Vote
from bot.render import more_sources_embed
from bot.services import AnsweringBot

MORE_SOURCES = 5
THANKS = {"up": "Thanks — noted as helpful. 👍", "down": "Thanks — noted as not helpful. 👎"}
FORGOTTEN = "I no longer have that answer, so I couldn't record this."


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"newsbot:vote:(?P<vote>up|down):(?P<answer>[0-9a-f]{1,32})",
):
    """👍 or 👎: stores the clicker's vote on the answer."""

    def __init__(self, vote: Vote, answer_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji="👍" if vote == "up" else "👎",
                custom_id=f"newsbot:vote:{vote}:{answer_id}",
            )
        )
        self.vote: Vote = vote
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> VoteButton:
        return cls(cast(Vote, match["vote"]), match["answer"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast(AnsweringBot, interaction.client)
        try:
            recorded = await asyncio.to_thread(
                bot.feedback.vote, self.answer_id, user_id=interaction.user.id, vote=self.vote
            )
            await interaction.response.send_message(
                THANKS[self.vote] if recorded else FORGOTTEN, ephemeral=True
            )
        except Exception as exc:
            await bot.report_interaction_failure(interaction, exc)


class MoreSourcesButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"newsbot:more:(?P<answer>[0-9a-f]{1,32})",
):
    """Shows the next passages, only to whoever clicked."""

    def __init__(self, answer_id: str, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label="More sources",
                custom_id=f"newsbot:more:{answer_id}",
                disabled=disabled,
            )
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> MoreSourcesButton:
        return cls(match["answer"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast(AnsweringBot, interaction.client)
        try:
            stored = await asyncio.to_thread(bot.feedback.answer, self.answer_id)
            if stored is None:
                await interaction.response.send_message(FORGOTTEN, ephemeral=True)
                return
            more = stored.answer.citations[stored.shown : stored.shown + MORE_SOURCES]
            await interaction.response.send_message(embed=more_sources_embed(more), ephemeral=True)
        except Exception as exc:
            await bot.report_interaction_failure(interaction, exc)


def answer_view(answer_id: str, *, more: bool) -> discord.ui.View:
    """👍 👎 [More sources] for the answer `answer_id`."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton("up", answer_id))
    view.add_item(VoteButton("down", answer_id))
    view.add_item(MoreSourcesButton(answer_id, disabled=not more))
    return view

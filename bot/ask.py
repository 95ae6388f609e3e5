"""The asking cog: `/ask`, @mentions, and follow-ups in a thread started from an answer."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.render import FOLLOW_UP_HINT, MESSAGE_LIMIT, answer_embed, shorten, with_model_note
from bot.services import AnsweringBot
from bot.views import answer_view
from index.feedback import StoredAnswer
from index.text import plain

NOTE_SECONDS = 20  # notes in a channel (not ephemeral) delete themselves after this
HOW_TO_ASK = "Ask me a question, e.g. `/ask how much aid has the US sent?`"


class AskCog(commands.Cog):
    """Answers questions from the indexed news articles."""

    def __init__(self, bot: AnsweringBot) -> None:
        self.bot = bot

    @app_commands.command(name="ask")
    @app_commands.describe(question="What you want to know, e.g. how much aid has the US sent?")
    async def ask(self, interaction: discord.Interaction[Any], question: str) -> None:
        """Ask a question about the news; the answer cites its sources."""
        question = plain(question)
        refusal = self.refusal(interaction.user.id, interaction.channel, question)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        stored = await self.bot.answer(
            question, user_id=interaction.user.id, channel=interaction.channel
        )
        message = await interaction.followup.send(
            embed=self._embed(stored, interaction.channel),
            view=answer_view(stored.id, more=self._has_more(stored)),
            allowed_mentions=discord.AllowedMentions.none(),
            wait=True,
        )
        await asyncio.to_thread(self.bot.feedback.set_message, stored.id, message.id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer an @mention, a DM, or a message in a thread started from an answer."""
        if message.author.bot or self.bot.user is None:
            return
        question = await self._question_in(message)
        if question is None:
            return
        question = plain(question)
        try:
            refusal = self.refusal(message.author.id, message.channel, question)
            if refusal:
                await message.reply(
                    refusal,
                    delete_after=NOTE_SECONDS,
                    mention_author=False,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
                return
            async with message.channel.typing():
                stored = await self.bot.answer(
                    question, user_id=message.author.id, channel=message.channel
                )
            reply = await message.reply(
                embed=self._embed(stored, message.channel),
                view=answer_view(stored.id, more=self._has_more(stored)),
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
            )
            await asyncio.to_thread(self.bot.feedback.set_message, stored.id, reply.id)
        except Exception as exc:
            await self.bot.report_message_failure(message, exc)

    async def _question_in(self, message: discord.Message) -> str | None:
        """The question `message` puts to the bot, or None if it is not talking to the bot."""
        me = self.bot.user
        assert me is not None
        mention = re.compile(rf"<@!?{me.id}>")
        if mention.search(message.content):
            return mention.sub(" ", message.content).strip()
        if isinstance(message.channel, discord.DMChannel):
            return message.content.strip()
        if isinstance(message.channel, discord.Thread) and message.content.strip():
            # A thread started from a message has that message's id.
            starter = await asyncio.to_thread(
                self.bot.feedback.answer_for_message, message.channel.id
            )
            if starter is not None:
                return message.content.strip()
        return None

    def refusal(self, user_id: int, channel: Any, question: str) -> str | None:
        """Why the bot will not answer this question here and now, or None."""
        settings = self.bot.settings
        if not self.bot.channel_allowed(channel):
            places = ", ".join(f"<#{c}>" for c in settings.allowed_channel_ids)
            return shorten(f"I only answer questions in {places}.", MESSAGE_LIMIT)
        if not any(c.isalnum() for c in question):  # blank, or only symbols and invisibles
            return HOW_TO_ASK
        if len(question) > settings.bot_max_question_chars:
            return (
                f"Please keep questions under {settings.bot_max_question_chars} characters "
                f"(yours has {len(question)})."
            )
        wait = self.bot.limiter.try_acquire(user_id)
        if wait:
            return (
                f"You're asking faster than I can keep up ({settings.bot_rate_limit} questions "
                f"a minute). Please try again in {math.ceil(wait)} s."
            )
        return None

    def _embed(self, stored: StoredAnswer, channel: Any) -> discord.Embed:
        latency = f"Answered in {stored.answer.latency_ms / 1000:.1f} s"
        can_thread = not isinstance(channel, discord.Thread | discord.DMChannel)
        footer = f"{latency} · {FOLLOW_UP_HINT}" if can_thread else latency
        footer = with_model_note(stored.answer, footer)
        return answer_embed(stored.answer, shown=stored.shown, footer=footer)

    @staticmethod
    def _has_more(stored: StoredAnswer) -> bool:
        return len(stored.answer.citations) > stored.shown

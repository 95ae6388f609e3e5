"""The asking cog: `/ask`, @mentions, and follow-ups in a thread started from an answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.feedback import StoredAnswer
from bot.render import (
    FOLLOW_UP_HINT,
    MESSAGE_LIMIT,
    answer_embed,
    shorten,
    unescaped,
    with_model_note,
)
from bot.services import AnsweringBot
from bot.views import answer_view
from index.answer.conversation import Turn
from index.errors import QuestionError, QuestionTooLongError
from index.text import question_text

log = logging.getLogger(__name__)

NOTE_SECONDS = 20  # notes in a channel (not ephemeral) delete themselves after this
# Messages read back per turn of a thread's conversation: a question, an answer, some chat.
HISTORY_MESSAGES_PER_TURN = 5
HOW_TO_ASK = "Ask me a question, e.g. `/ask how much aid has the US sent?`"


class AskCog(commands.Cog):
    """Answers questions from the indexed news articles."""

    def __init__(self, bot: AnsweringBot) -> None:
        self.bot = bot

    @app_commands.command(name="ask")
    @app_commands.describe(question="What you want to know, e.g. how much aid has the US sent?")
    async def ask(self, interaction: discord.Interaction[Any], question: str) -> None:
        """Ask a question about the news; the answer cites its sources."""
        refusal = self.refusal(interaction.user.id, interaction.channel, question)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        history = await self._history(interaction.channel)
        stored = await self.bot.answer(
            question,
            user_id=interaction.user.id,
            channel=interaction.channel,
            history=history,
            asked_on=asked_on(interaction.created_at),
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
                history = await self._history(message.channel, message)
                stored = await self.bot.answer(
                    question,
                    user_id=message.author.id,
                    channel=message.channel,
                    history=history,
                    asked_on=asked_on(message.created_at),
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
        if not message.content.strip():
            return None
        if isinstance(message.channel, discord.Thread) and await self._on_an_answer(
            message.channel
        ):
            return message.content.strip()
        if message.reference is not None and self._is_answer(await self._referenced(message)):
            return message.content.strip()  # a reply to one of the bot's answers
        return None

    async def _on_an_answer(self, channel: Any) -> bool:
        """Whether `channel` is a thread started from one of the bot's answers."""
        if not isinstance(channel, discord.Thread):
            return False
        # A thread started from a message has that message's id.
        starter = await asyncio.to_thread(self.bot.feedback.answer_for_message, channel.id)
        return starter is not None

    # -- the conversation so far, read back from Discord ----------------------------------
    async def _history(self, channel: Any, message: discord.Message | None = None) -> list[Turn]:
        """The earlier questions and answers a follow-up is understood with (oldest first):
        those in a thread started from an answer, or up a chain of replies to answers."""
        turns = self.bot.settings.chat_turns
        if turns == 0:
            return []
        try:
            if await self._on_an_answer(channel):
                return await self._thread_turns(channel, turns)
            if message is not None and message.reference is not None:
                return await self._reply_turns(message, turns)
        except discord.HTTPException as exc:  # answered on its own rather than not at all
            log.warning("could not read the conversation in %s: %s", channel.id, exc.status)
        return []

    async def _thread_turns(self, thread: discord.Thread, turns: int) -> list[Turn]:
        """The answer the thread was started from, then the bot's answers in it."""
        found: list[Turn] = []
        async for earlier in thread.history(limit=HISTORY_MESSAGES_PER_TURN * turns):
            if self._is_answer(earlier):
                found.append(_turn(earlier))
            if len(found) == turns:
                return found[::-1]
        parent = self.bot.get_partial_messageable(thread.parent_id or thread.id)
        try:
            starter: discord.Message | None = await parent.fetch_message(thread.id)
        except discord.NotFound:
            starter = None
        if self._is_answer(starter):
            assert starter is not None
            found.append(_turn(starter))
        return found[::-1]

    async def _reply_turns(self, message: discord.Message, turns: int) -> list[Turn]:
        """The bot's answers up the chain of replies `message` ends."""
        found: list[Turn] = []
        current: discord.Message | None = message
        for _ in range(2 * turns):  # an answer, the question it replied to, the answer before
            if current is None or current.reference is None or len(found) == turns:
                break
            current = await self._referenced(current)
            if self._is_answer(current):
                assert current is not None
                found.append(_turn(current))
        return found[::-1]

    async def _referenced(self, message: discord.Message) -> discord.Message | None:
        """The message `message` replies to, if it still exists."""
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        if isinstance(reference.resolved, discord.Message):
            return reference.resolved
        if isinstance(reference.resolved, discord.DeletedReferencedMessage):
            return None
        channel = self.bot.get_partial_messageable(reference.channel_id)
        try:
            return await channel.fetch_message(reference.message_id)
        except discord.NotFound:
            return None

    def _is_answer(self, message: discord.Message | None) -> bool:
        """Whether `message` is one of the bot's answers (an embed titled with its question)."""
        me = self.bot.user
        return (
            message is not None
            and me is not None
            and message.author.id == me.id
            and bool(message.embeds)
            and bool(message.embeds[0].title)
        )

    def refusal(self, user_id: int, channel: Any, question: str) -> str | None:
        """Why the bot will not answer this question (as typed) here and now, or None."""
        settings = self.bot.settings
        if not self.bot.channel_allowed(channel):
            places = ", ".join(f"<#{c}>" for c in settings.allowed_channel_ids)
            return shorten(f"I only answer questions in {places}.", MESSAGE_LIMIT)
        try:  # the core's check, with the bot's own limit (at most the core's)
            text = question_text(question, limit=settings.bot_max_question_chars)
        except QuestionTooLongError as exc:
            return f"Please keep questions under {exc.limit} characters (yours has {exc.length})."
        except QuestionError:
            return HOW_TO_ASK
        if not any(c.isalnum() for c in text):  # only symbols
            return HOW_TO_ASK
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


def asked_on(sent: dt.datetime) -> str:
    """The date (UTC) a question was sent to Discord: the date it is asked on."""
    return sent.astimezone(dt.UTC).date().isoformat()


def _turn(message: discord.Message) -> Turn:
    """The question (the embed's title) and the answer (its text) of one of the bot's answers."""
    embed = message.embeds[0]
    return Turn(unescaped(embed.title or ""), unescaped(embed.description or ""))

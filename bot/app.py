"""The Discord bot: a thin adapter that puts questions to a `Newsbot` and posts its `Answer`.

`run(settings)` is what `newsbot bot` calls; `NewsbotBot` gets every collaborator through its
constructor, so tests run it against a fake Discord with a fake embedder.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import secrets
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.ask import AskCog
from bot.feedback import FeedbackLog, StoredAnswer
from bot.ratelimit import RateLimiter
from bot.settings import BotSettings
from bot.views import MORE_SOURCES, MoreSourcesButton, VoteButton
from index.answer.conversation import Turn
from index.answer.types import RETRIEVED, Answer
from index.build.schedule import Synced, SyncSchedule
from index.errors import (
    ConfigError,
    IndexMismatchError,
    IndexMissingError,
    NewsbotError,
    StoreUnavailableError,
)
from index.ingest.web.folder import Saved
from index.models.embeddings import Embedder, load_embedder
from index.newsbot import Newsbot
from index.redaction import without_passwords
from index.settings import Settings

log = logging.getLogger("newsbot.bot")

# Three dot-separated base64url parts: the bot's user id, a timestamp, a signature.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{17,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")
PORTAL = "https://discord.com/developers/applications"
UNAVAILABLE = "The news index is unavailable right now; please try again in a minute."
NO_INDEX = "There is no news index yet: an admin needs to run `newsbot index`."
STORE_RETRY_SECONDS = 2.0
REBUILDING = "The news index is being rebuilt right now; please try again in a few minutes."
SYNC_STOP_SECONDS = 5.0


def check_token(settings: BotSettings) -> str:
    """The bot token from the settings, or a ConfigError that says how to get a good one."""
    if settings.discord_token is None:
        raise ConfigError(
            f"DISCORD_TOKEN is not set: copy your bot's token from {PORTAL} "
            "(your app → Bot → Reset Token) into .env as DISCORD_TOKEN=..."
        )
    token = settings.discord_token.get_secret_value().strip()
    if not TOKEN_SHAPE.fullmatch(token):
        hint = " (leave out the 'Bot ' prefix)" if token.lower().startswith("bot ") else ""
        raise ConfigError(
            "DISCORD_TOKEN does not look like a bot token (three parts separated by dots)"
            f"{hint}: copy it again from {PORTAL} (your app → Bot → Reset Token), "
            "not the client secret or the application id"
        )
    return token


def intents_for(settings: BotSettings) -> discord.Intents:
    """Guilds and messages; Message Content only when follow-ups without a mention are wanted."""
    intents = discord.Intents.none()
    intents.guilds = True  # slash commands, channels and threads
    intents.guild_messages = True  # @mentions and thread follow-ups
    intents.dm_messages = True  # questions in DMs
    intents.message_content = settings.discord_message_content
    return intents


def with_more_sources(answer: Answer, shown: int) -> tuple[Answer, int]:
    """`answer` citing, after the (at most `shown`) sources it shows, the other passages
    retrieved for the question (role `RETRIEVED`: those it ranked, then `answer.more`), for
    the More sources button; and how many it shows."""
    cited = answer.citations[:shown]
    if not cited:
        return answer, 0
    taken = {(c.article_id, c.passage) for c in cited}
    retrieved = [*answer.ranked, *answer.more]
    more = [c for c in retrieved if (c.article_id, c.passage) not in taken][:MORE_SOURCES]
    extra = [
        replace(c, n=n, role=RETRIEVED, highlight=None)
        for n, c in enumerate(more, start=len(cited) + 1)
    ]
    return replace(answer, citations=[*cited, *extra]), len(cited)


class NewsbotBot(commands.Bot):
    """The Discord client: answers through `newsbot`, records answers and votes in `feedback`."""

    def __init__(
        self,
        settings: BotSettings,
        newsbot: Newsbot,
        feedback: FeedbackLog,
        *,
        guild_ready_timeout: float = 2.0,
        schedule: SyncSchedule | None = None,
    ) -> None:
        """`guild_ready_timeout`: how long to wait for one more server before being ready;
        `schedule`: the feeds' background sync (FEEDS_SYNC_MINUTES), started with the bot."""
        # newsbot never joins voice: no start-up warnings about missing voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents_for(settings),
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
        )
        self.settings = settings
        self.newsbot = newsbot
        self.feedback = feedback
        self.limiter = RateLimiter(settings.bot_rate_limit)
        self.schedule = schedule
        # One worker: asks queue here, and never hold up the default pool quick work uses.
        self._answering = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsbot-answer")
        self.tree.on_error = self.report_interaction_failure  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        if self.schedule is not None:
            self.schedule.start()  # its own thread: the event loop never waits on a sync
        await self.add_cog(AskCog(self))
        self.add_dynamic_items(VoteButton, MoreSourcesButton)
        if self.settings.discord_guild_id is not None:
            guild = discord.Object(self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    async def on_ready(self) -> None:
        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
        log.info("newsbot is online as %s in %d server(s)", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: `AskCog` handles every message addressed to the bot."""

    async def close(self) -> None:
        await super().close()
        self._answering.shutdown(wait=False, cancel_futures=True)
        if self.schedule is not None:
            # A sync in progress is let finish for a moment; files and index are written
            # atomically, so one cut short by the exit loses nothing.
            await asyncio.to_thread(self.schedule.stop, SYNC_STOP_SECONDS)

    def channel_allowed(self, channel: Any) -> bool:
        """Whether questions may be answered in `channel` (a thread counts as its parent)."""
        allowed = self.settings.allowed_channel_ids
        if not allowed or isinstance(channel, discord.DMChannel | discord.GroupChannel):
            return True
        ids = {getattr(channel, "id", None), getattr(channel, "parent_id", None)}
        return any(i in allowed for i in ids if i is not None)

    async def answer(
        self,
        question: str,
        *,
        user_id: int,
        channel: Any,
        history: Sequence[Turn] = (),
        asked_on: str | None = None,
    ) -> StoredAnswer:
        """Answer `question` (a follow-up to `history`, asked on the ISO date `asked_on`) off
        the event loop and record it for the buttons."""
        shown = self.settings.top_k

        def work() -> StoredAnswer:
            # The answer reads `shown` passages, as `newsbot ask` does; More sources lists
            # those retrieved beyond them.
            asked = self.newsbot.ask(
                question, k=shown, more=MORE_SOURCES, history=history, asked_on=asked_on
            )
            answer, listed = with_more_sources(asked, shown)
            return self.feedback.record_answer(
                answer, user_id=user_id, channel_id=getattr(channel, "id", None), shown=listed
            )

        return await asyncio.get_running_loop().run_in_executor(self._answering, work)

    async def report_interaction_failure(
        self, interaction: discord.Interaction[Any], error: Exception
    ) -> None:
        """Tell the user briefly, and only them; log the details."""
        text = failure_text(error, interaction.user.id)
        try:
            if interaction.response.is_done():
                # The public "thinking…" placeholder goes; the explanation is for the asker only.
                await interaction.delete_original_response()
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell user %s about a failure", interaction.user.id)

    async def report_message_failure(self, message: discord.Message, error: Exception) -> None:
        text = failure_text(error, message.author.id)
        try:
            await message.reply(
                text,
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException:
            log.warning("could not tell user %s about a failure", message.author.id)


def failure_text(error: BaseException, user_id: int) -> str:
    """What the user sees for `error`; anything unexpected is logged here, under a reference."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, StoreUnavailableError):
        log.warning("index unavailable: %s", error)
        return UNAVAILABLE
    if isinstance(error, IndexMissingError):
        return NO_INDEX
    if isinstance(error, IndexMismatchError):
        log.error("the index no longer matches this bot's settings: %s", error)
        return REBUILDING
    if isinstance(error, NewsbotError):
        return str(error)
    ref = secrets.token_hex(3).upper()
    log.error("ref %s: unexpected error answering user %s", ref, user_id, exc_info=error)
    return f"Something went wrong (ref {ref}). An admin can look it up in the bot's log."


def run(settings: BotSettings) -> None:
    """Run the bot until interrupted; setup problems raise a NewsbotError with one clear line."""
    token = check_token(settings)
    embedder = load_embedder(settings, purpose="query")
    newsbot = open_index(settings, embedder)
    feedback = FeedbackLog(settings.index_dir)
    if not logging.getLogger().handlers:
        # Quiet until connected, so a refused start-up ends with just the one-line error.
        discord.utils.setup_logging(level=logging.WARNING, root=True)
    schedule = None
    if settings.feeds_sync_minutes > 0:
        schedule = SyncSchedule(
            settings,
            embedder,
            minutes=settings.feeds_sync_minutes,
            on_done=log_sync,
            on_error=log_sync_failure,
        )
    bot = NewsbotBot(settings, newsbot, feedback, schedule=schedule)
    try:
        asyncio.run(serve(bot, token, warm_up=newsbot.warm_up))
    except KeyboardInterrupt:
        pass
    finally:
        newsbot.close()
        feedback.close()


def log_sync(done: Synced) -> None:
    """A scheduled sync in the bot's log: a line per failure (the first few, then how many
    more), then what changed."""
    report = done.sync
    for line in report.failure_lines():
        log.warning("%s", without_passwords(line))
    indexed = "; index updated" if done.index.changed else ""
    log.info(
        "feeds synced: %d added, %d updated, %d pruned, %d failed%s",
        report.count(Saved.ADDED),
        report.count(Saved.UPDATED),
        len(report.pruned),
        report.failures,
        indexed,
    )


def log_sync_failure(error: BaseException) -> None:
    """A scheduled sync that failed as a whole: one line, a traceback if unexpected."""
    expected = isinstance(error, NewsbotError)
    log.warning("feeds sync failed: %s", error, exc_info=None if expected else error)


def open_index(settings: Settings, embedder: Embedder) -> Newsbot:
    """The index in service (a reindex running meanwhile does not matter), once its store
    answers: a bot started while the Chroma server is down waits for it."""
    waiting = False
    while True:
        try:
            return Newsbot(settings, embedder)
        except StoreUnavailableError as exc:
            if not waiting:
                print(f"newsbot: {exc}; waiting for it…", file=sys.stderr, flush=True)
                waiting = True
            time.sleep(STORE_RETRY_SECONDS)


async def serve(bot: NewsbotBot, token: str, *, warm_up: Any = None) -> None:
    """Log in, load the model, connect; Discord's errors become one-line NewsbotErrors."""
    try:
        async with bot:
            await bot.login(token)
            if warm_up is not None:
                # Load the model before the first question, not during it.
                await asyncio.get_running_loop().run_in_executor(None, warm_up)
            # The model, Chroma and discord.py leave ~500k long-lived objects; one full garbage
            # collection scanning them takes ~400 ms, and under a burst of questions it stalled
            # the event loop that long (benchmarks/bench_bot.py). Frozen, they are not rescanned.
            gc.collect()
            gc.freeze()
            await bot.connect()
    except discord.LoginFailure:
        raise ConfigError(
            f"Discord rejected DISCORD_TOKEN (401 Unauthorized): reset the token at {PORTAL} "
            "(your app → Bot → Reset Token) and put the new one in .env"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            f"Discord refused the Message Content intent: turn it on at {PORTAL} "
            "(your app → Bot → Privileged Gateway Intents), or set DISCORD_MESSAGE_CONTENT=false "
            "(then follow-ups in threads must @mention the bot)"
        ) from None
    except (aiohttp.ClientConnectionError, discord.GatewayNotFound) as exc:
        raise NewsbotError(
            f"cannot reach Discord ({type(exc).__name__}): check the network"
        ) from None

"""The Discord bot, driven through real discord.py against an in-process fake of Discord.

Gateway payloads (INTERACTION_CREATE, MESSAGE_CREATE, THREAD_CREATE) go in through the fake's
websocket; the assertions are on the HTTP requests the bot makes, i.e. what a user would see.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import threading
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.app import REBUILDING, UNAVAILABLE, NewsbotBot, serve
from bot.ask import HOW_TO_ASK, asked_on
from bot.feedback import FeedbackLog
from bot.render import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    MESSAGE_LIMIT,
    NOT_COVERED_COLOUR,
)
from bot.settings import BotSettings
from bot.views import FORGOTTEN
from index.answer.types import NOT_COVERED
from index.build.reindex import reindex
from index.build.schedule import Synced, SyncSchedule
from index.cli.app import app
from index.errors import IndexMismatchError, StoreUnavailableError
from index.ingest.web.feedlist import Feed, FeedList
from index.ingest.web.folder import Saved
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import DATA, write_article
from tests.fake_discord import (
    APP_ID,
    BOT_ID,
    BOT_USER,
    CHANNEL_ID,
    EPHEMERAL,
    OTHER_CHANNEL_ID,
    TOKEN,
    USER_ID,
    FakeDiscord,
    Request,
    patched,
    thread_channel,
    until_ready,
)
from tests.fakes import FakeEmbedder
from tests.test_llm_answer import Recording
from tests.test_llm_answer import reply as model_reply
from tests.web_server import Reply, WebServer

AID_QUESTION = "How much military aid has the United States sent to Ukraine?"
# discord.py waits this long after the last server arrives before it is ready. The fake sends
# its one server right after READY, ahead of anything a test sends, so a short wait loses none.
GUILD_READY_SECONDS = 0.02


def bot_settings(settings: Settings) -> BotSettings:
    """`settings` as the bot's: the Discord ones at their defaults unless already set."""
    if isinstance(settings, BotSettings):
        return settings
    return BotSettings.model_validate(settings.model_dump())


@pytest.fixture
def settings(settings: Settings) -> BotSettings:
    """The tests' settings (conftest's), as the bot's."""
    return bot_settings(settings)


@asynccontextmanager
async def running(
    settings: Settings, embedder: FakeEmbedder, schedule: SyncSchedule | None = None
) -> AsyncIterator[Session]:
    """The real bot, logged in and READY against a fresh fake Discord."""
    settings = bot_settings(settings)
    fake = FakeDiscord()
    await fake.start()
    newsbot = Newsbot(settings, embedder)
    feedback = FeedbackLog(settings.index_dir)
    bot = NewsbotBot(
        settings, newsbot, feedback, guild_ready_timeout=GUILD_READY_SECONDS, schedule=schedule
    )
    with patched(fake):
        task = asyncio.create_task(serve(bot, TOKEN))
        try:
            await until_ready(bot)
            yield Session(fake, bot)
        finally:
            await bot.close()
            await asyncio.wait_for(task, 30)
            await fake.stop()
            newsbot.close()
            feedback.close()


class Session:
    """A running bot and its fake Discord, with the steps a user takes."""

    def __init__(self, fake: FakeDiscord, bot: NewsbotBot) -> None:
        self.fake = fake
        self.bot = bot

    async def slash_ask(self, question: str, **kwargs: Any) -> tuple[Request, Request | None]:
        """Run `/ask`; returns (the interaction callback, the follow-up message if any)."""
        data = self.fake.slash_ask(question, **kwargs)
        start = len(self.fake.requests)
        await self.fake.dispatch("INTERACTION_CREATE", data)
        callback = await self.fake.wait_for(
            lambda r: r.path.startswith(f"/interactions/{data['id']}/"), after=start
        )
        if callback.body["type"] != 5:  # answered at once (a refusal), nothing follows
            return callback, None
        followup = await self.fake.wait_for(
            lambda r: r.method == "POST" and r.path == f"/webhooks/{APP_ID}/{data['token']}",
            after=start,
        )
        return callback, followup

    async def click(self, custom_id: str, message: dict[str, Any], **kwargs: Any) -> Request:
        data = self.fake.button_click(custom_id, message, **kwargs)
        await self.fake.dispatch("INTERACTION_CREATE", data)
        return await self.fake.wait_for(lambda r: r.path.startswith(f"/interactions/{data['id']}/"))

    async def say(self, content: str, **kwargs: Any) -> Request:
        """Post a message; returns the bot's reply."""
        data = self.fake.message(content, **kwargs)
        start = len(self.fake.requests)
        await self.fake.dispatch("MESSAGE_CREATE", data)
        channel = data["channel_id"]
        return await self.fake.wait_for(
            lambda r: r.method == "POST" and r.path == f"/channels/{channel}/messages",
            after=start,
        )

    async def thread_on_an_answer(self) -> int:
        """Start a thread on an answer to an @mention; the thread's id."""
        answer = await self.say(f"<@{BOT_ID}> {AID_QUESTION}", mentions=[BOT_USER])
        thread_id = int(message_of(self.fake, answer)["id"])  # a thread shares its starter's id
        await self.fake.dispatch(
            "THREAD_CREATE", {**thread_channel(thread_id), "newly_created": True}
        )
        return thread_id

    async def every_way(self, question: str, thread_id: int) -> dict[str, dict[str, Any]]:
        """`question` by /ask, by @mention and in the thread: the message each got back."""
        callback, followup = await self.slash_ask(question)
        replies = {"/ask": followup.body if followup else callback.body["data"]}
        mention = await self.say(f"<@{BOT_ID}> {question}", mentions=[BOT_USER])
        replies["@mention"] = mention.body
        if question.strip():  # Discord delivers no blank messages; a thread's chat is not asked
            replies["thread"] = (await self.say(question, channel_id=thread_id)).body
        return replies

    async def burst(self, asks: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
        """Send every (`/ask` or `@mention`, user id, question) at once; what each got back."""
        start = len(self.fake.requests)
        replies: list[Callable[[Request], bool]] = []
        for how, user_id, question in asks:
            if how == "/ask":
                data = self.fake.slash_ask(question, user_id=user_id)
                await self.fake.dispatch("INTERACTION_CREATE", data)
                replies.append(_answers_interaction(data))
            else:
                data = self.fake.message(
                    f"<@{BOT_ID}> {question}", author_id=user_id, mentions=[BOT_USER]
                )
                await self.fake.dispatch("MESSAGE_CREATE", data)
                replies.append(_replies_to(data))
        got = [await self.fake.wait_for(reply, after=start) for reply in replies]
        return [r.body["data"] if r.path.endswith("/callback") else r.body for r in got]


def _answers_interaction(data: dict[str, Any]) -> Callable[[Request], bool]:
    """Matches the request that answers the interaction `data`: a note, or the follow-up."""
    note = f"/interactions/{data['id']}/{data['token']}/callback"
    followup = f"/webhooks/{APP_ID}/{data['token']}"
    return lambda r: (
        r.method == "POST" and ((r.path == note and r.body["type"] == 4) or r.path == followup)
    )


def _replies_to(data: dict[str, Any]) -> Callable[[Request], bool]:
    """Matches the bot's reply to the message `data`."""
    return lambda r: (
        r.method == "POST"
        and r.path == f"/channels/{data['channel_id']}/messages"
        and str((r.body.get("message_reference") or {}).get("message_id")) == data["id"]
    )


def scenario(
    settings: Settings, embedder: FakeEmbedder, steps: Callable[[Session], Awaitable[None]]
) -> None:
    """Run `steps` against the bot; then check every message it sent could do no harm."""
    reindex(settings, embedder)

    async def main() -> None:
        async with running(settings, embedder) as session:
            await steps(session)
            for message in sent_messages(session.fake):
                assert_harmless(message)

    asyncio.run(main())


def sent_messages(fake: FakeDiscord) -> list[dict[str, Any]]:
    """Every message the bot posted or edited, as the JSON it sent."""
    sent = []
    for r in fake.requests:
        if r.method not in ("POST", "PATCH") or not isinstance(r.body, dict):
            continue
        if r.path.endswith("/callback"):
            if r.body["type"] != 5:  # 5 is the "thinking…" acknowledgement, with no message
                sent.append(r.body["data"])
        elif r.path.startswith("/webhooks/") or re.fullmatch(r"/channels/\d+/messages.*", r.path):
            sent.append(r.body)
    return sent


# Pings and the text that hides or reorders characters (control codes, bidi overrides).
RAW_MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d+>")
HIDDEN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_harmless(message: dict[str, Any]) -> None:
    """A message Discord accepts (its limits), that pings nobody and hides nothing."""
    allowed = message["allowed_mentions"]
    assert allowed["parse"] == [] and not allowed.get("users") and not allowed.get("roles")
    assert not allowed.get("replied_user")
    content = message.get("content") or ""
    assert len(content) <= MESSAGE_LIMIT
    texts = [content]
    for embed in message.get("embeds") or []:
        fields = embed.get("fields") or []
        title = embed.get("title") or ""
        description = embed.get("description") or ""
        footer = (embed.get("footer") or {}).get("text") or ""
        assert len(title) <= EMBED_TITLE_LIMIT
        assert len(description) <= EMBED_DESCRIPTION_LIMIT
        assert len(footer) <= FOOTER_LIMIT
        assert len(fields) <= EMBED_FIELD_LIMIT
        for f in fields:
            assert len(f["name"]) <= FIELD_NAME_LIMIT and len(f["value"]) <= FIELD_VALUE_LIMIT
        parts = [title, description, footer, *(f["name"] + f["value"] for f in fields)]
        assert sum(len(t) for t in parts) <= EMBED_TOTAL_LIMIT
        texts += parts
    for text in texts:
        assert not RAW_MENTION.search(text), text
        assert not HIDDEN.search(text), repr(text)


def as_read(text: str) -> str:
    """`text` as Discord shows it: escaped characters as typed, mentions unbroken."""
    return re.sub(r"\\(.)", r"\1", text).replace("@\u200b", "@")


def live_markdown(text: str) -> list[str]:
    """Markdown that would still format `text` (URLs aside, which Discord does not format)."""
    text = re.sub(r"\\.", "", text)  # escaped: shown as typed
    text = re.sub(r"(?:https?|steam)://[^\s<]+[^<.,:;\"'\]\s]", "", text)
    return re.findall(r"[*_`~|]|\[[^\]]*\]\(|^\s*[#>-]|\n", text)


def embed_of(request: Request) -> dict[str, Any]:
    embeds = request.body["embeds"]
    assert len(embeds) == 1
    return embeds[0]


def custom_ids(request: Request) -> list[str]:
    return [c["custom_id"] for row in request.body["components"] for c in row["components"]]


def message_of(fake: FakeDiscord, request: Request) -> dict[str, Any]:
    """The message the fake created for `request` (buttons are clicked on it)."""
    return next(
        m for m in reversed(fake.messages.values()) if m["embeds"] == request.body.get("embeds")
    )


# -- asking ----------------------------------------------------------------------------------
def test_slash_ask_acknowledges_then_answers_with_numbered_linked_sources(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    async def steps(s: Session) -> None:
        callback, followup = await s.slash_ask(AID_QUESTION)
        assert followup is not None
        assert callback.body["type"] == 5  # deferred: "newsbot is thinking…"
        assert s.fake.requests.index(callback) < s.fake.requests.index(followup)
        assert not followup.flags & EPHEMERAL
        embed = embed_of(followup)
        assert embed["title"] == AID_QUESTION
        assert "$56.2 billion" in embed["description"]
        assert embed["description"].endswith("[1]")
        names = [f["name"] for f in embed["fields"]]
        assert names[0] == "[1] Example News · 2024-11-17"
        assert [int(re.match(r"\[(\d+)\]", n)[1]) for n in names] == list(  # type: ignore[index]
            range(1, len(names) + 1)
        )
        first = embed["fields"][0]["value"]
        assert first.startswith("[US aid to Ukraine](https://example.com/2024/11/17/aid)\n> “")
        assert "**The United States has sent $56.2 billion" in first
        assert followup.body["allowed_mentions"] == {"parse": []}
        ids = custom_ids(followup)
        assert [i.rsplit(":", 1)[0] for i in ids] == [
            "newsbot:vote:up",
            "newsbot:vote:down",
            "newsbot:more",
        ]

    scenario(settings, fake_embedder, steps)


def test_mention_is_answered_in_the_channel_without_pinging(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    async def steps(s: Session) -> None:
        reply = await s.say(f"<@{BOT_ID}> {AID_QUESTION}", mentions=[BOT_USER])
        assert "$56.2 billion" in embed_of(reply)["description"]
        assert reply.body["allowed_mentions"] == {"parse": [], "replied_user": False}
        assert int(reply.body["message_reference"]["channel_id"]) == CHANNEL_ID
        typing = s.fake.matching("POST", f"/channels/{CHANNEL_ID}/typing")
        assert typing, "shows 'newsbot is typing…' while it works"

    scenario(settings, fake_embedder, steps)


def test_messages_not_addressed_to_the_bot_are_ignored(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    async def steps(s: Session) -> None:
        await s.fake.dispatch("MESSAGE_CREATE", s.fake.message(AID_QUESTION))
        # A mention afterwards is answered, and nothing was posted for the first message.
        await s.say(f"<@{BOT_ID}> {AID_QUESTION}", mentions=[BOT_USER])
        assert len(s.fake.matching("POST", f"/channels/{CHANNEL_ID}/messages")) == 1

    scenario(settings, fake_embedder, steps)


def test_not_covered_reply_is_short_grey_and_cites_nothing(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    async def steps(s: Session) -> None:
        _, followup = await s.slash_ask("Which team won the basketball championship final?")
        assert followup is not None
        embed = embed_of(followup)
        assert embed["color"] == NOT_COVERED_COLOUR.value
        assert embed["description"].startswith(NOT_COVERED)
        assert len(embed["description"]) < 200
        assert "fields" not in embed or not embed["fields"]

    scenario(settings, fake_embedder, steps)


def test_very_long_material_keeps_every_discord_limit(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    # Ten long sources would overflow the embed's 6,000 characters at 1,024 each.
    settings = settings.overridden(top_k=10)
    urls = {"https://example.com/2024/11/17/aid"}
    for i in range(12):
        # Words of its own in each, or the passages are collapsed as near-duplicates.
        sentence = f"Report {i}: the United States sent military aid to Ukraine, aide {i} said. "
        urls.add("https://example.com/" + "very-long-path/" * 30 + f"{i}")
        write_article(
            settings.corpus_dir,
            f"long{i}.md",
            (sentence * 40) + "\n\n" + ("Ukraine aid " * 600),
            title="A very long headline about United States military aid to Ukraine " * 8,
            source="The Extremely Long Outlet Name Gazette " * 4,
            url="https://example.com/" + "very-long-path/" * 30 + f"{i}",
        )

    async def steps(s: Session) -> None:
        _, followup = await s.slash_ask("Which country did the United States send aid to? " * 5)
        assert followup is not None
        assert "content" not in followup.body  # the embed is the whole message
        embed = embed_of(followup)
        assert len(embed["title"]) <= EMBED_TITLE_LIMIT
        assert len(embed["description"]) <= EMBED_DESCRIPTION_LIMIT
        assert len(embed["footer"]["text"]) <= FOOTER_LIMIT
        assert 3 <= len(embed["fields"]) <= EMBED_FIELD_LIMIT  # the answer's and further reading
        total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
        total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
        assert total <= EMBED_TOTAL_LIMIT
        for f in embed["fields"]:
            assert len(f["name"]) <= FIELD_NAME_LIMIT
            assert len(f["value"]) <= FIELD_VALUE_LIMIT
            head = f["value"].split("\n", 1)[0]
            # The link is whole (title and full URL) or not there at all.
            link = re.fullmatch(r"\[([^\]]+)\]\((https://[^)]+)\)", head)
            assert link is None or link[2] in urls

    scenario(settings, fake_embedder, steps)


# -- who may ask ----------------------------------------------------------------------------
def test_rate_limit_is_a_polite_ephemeral_note_per_user(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    settings = settings.overridden(bot_rate_limit=2)

    async def steps(s: Session) -> None:
        for _ in range(2):
            _, followup = await s.slash_ask(AID_QUESTION)
            assert followup is not None
        callback, followup = await s.slash_ask(AID_QUESTION)
        assert followup is None
        assert callback.body["type"] == 4
        assert callback.flags & EPHEMERAL
        assert "2 questions a minute" in callback.body["data"]["content"]
        _, other = await s.slash_ask(AID_QUESTION, user_id=USER_ID + 1)
        assert other is not None, "another user is not held up"

    scenario(settings, fake_embedder, steps)


def test_a_burst_from_many_users_is_answered_or_politely_limited_never_dropped(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    settings = settings.overridden(bot_rate_limit=3)
    asked = {USER_ID + 100 + u: n for u, n in enumerate([1, 2, 3, 3, 4, 6, 9, 12])}  # 40
    questions = [AID_QUESTION, "Who won the Chicago Marathon?", "Which river flooded Passau?"]
    asks = [
        ("/ask" if (i + n) % 2 else "@mention", user_id, questions[i % len(questions)])
        for i in range(max(asked.values()))
        for user_id, n in asked.items()
        if i < n
    ]

    async def steps(s: Session) -> None:
        replies = await s.burst(asks)
        answered = dict.fromkeys(asked, 0)
        limited = dict.fromkeys(asked, 0)
        for (how, user_id, question), reply in zip(asks, replies, strict=True):
            if reply.get("embeds"):
                assert reply["embeds"][0]["title"] == question, how
                assert not reply.get("flags", 0) & EPHEMERAL, how
                answered[user_id] += 1
            else:
                assert "3 questions a minute" in reply["content"], (how, reply["content"])
                limited[user_id] += 1
        assert answered == {u: min(n, 3) for u, n in asked.items()}
        assert limited == {u: max(n - 3, 0) for u, n in asked.items()}

    scenario(settings, fake_embedder, steps)


def test_channels_outside_the_allow_list_get_a_note(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    settings = settings.overridden(allowed_channel_ids=[CHANNEL_ID])

    async def steps(s: Session) -> None:
        callback, followup = await s.slash_ask(AID_QUESTION, channel_id=OTHER_CHANNEL_ID)
        assert followup is None and callback.flags & EPHEMERAL
        assert f"<#{CHANNEL_ID}>" in callback.body["data"]["content"]
        _, allowed = await s.slash_ask(AID_QUESTION, channel_id=CHANNEL_ID)
        assert allowed is not None

    scenario(settings, fake_embedder, steps)


# -- hostile questions -------------------------------------------------------------------
ROLE_ID = 666666666666666666
TEN_KB = (f"@everyone <@&{ROLE_ID}> why " * 400)[:10_000]


@pytest.mark.parametrize(
    ("question", "note"),
    [
        pytest.param("", HOW_TO_ASK, id="empty"),
        pytest.param(" \n\t\u3000 \n", HOW_TO_ASK, id="whitespace"),
        pytest.param("\x00\x07\x1b[2J\u200b\u202e\ufeff ?!", HOW_TO_ASK, id="nothing-visible"),
        pytest.param(TEN_KB, "Please keep questions under 300 characters", id="10-kB"),
    ],
)
def test_an_empty_or_overlong_question_gets_a_note_every_way_it_is_asked(
    settings: Settings, fake_embedder: FakeEmbedder, question: str, note: str
) -> None:
    async def steps(s: Session) -> None:
        thread_id = await s.thread_on_an_answer()
        replies = await s.every_way(question, thread_id)
        for how, reply in replies.items():
            assert reply["content"].startswith(note), how
            assert not reply.get("embeds"), how
        assert replies["/ask"]["flags"] & EPHEMERAL

    scenario(settings, fake_embedder, steps)


@pytest.mark.parametrize(
    ("question", "as_typed"),
    [
        pytest.param(
            "\x1b[31mHow much military aid\x00 has the\u202e United States sent\x07 to "
            "Ukraine?\x1b[0m\u200b",
            AID_QUESTION,
            id="control-characters",
        ),
        pytest.param(
            "```py\nprint('hi')\n```\n# **How much** military aid has the _United States_ "
            "sent to ||Ukraine||? ~~no~~ `x` \\\n> quoted\n- listed",
            "```py print('hi') ``` # **How much** military aid has the _United States_ "
            "sent to ||Ukraine||? ~~no~~ `x` \\ > quoted - listed",
            id="markdown-and-code-fences",
        ),
        pytest.param(
            f"@everyone @here <@&{ROLE_ID}> <@{USER_ID}> <@!{USER_ID}> {AID_QUESTION}",
            f"@everyone @here <@&{ROLE_ID}> <@{USER_ID}> <@!{USER_ID}> {AID_QUESTION}",
            id="mentions",
        ),
        pytest.param(
            f"[free nitro](https://evil.example/gift) <https://evil.example/a> "
            f"https://evil.example/@everyone {AID_QUESTION}",
            f"[free nitro](https://evil.example/gift) <https://evil.example/a> "
            f"https://evil.example/@everyone {AID_QUESTION}",
            id="links",
        ),
    ],
)
def test_a_hostile_question_is_answered_under_an_inert_title_every_way_it_is_asked(
    settings: Settings, fake_embedder: FakeEmbedder, question: str, as_typed: str
) -> None:
    async def steps(s: Session) -> None:
        thread_id = await s.thread_on_an_answer()
        replies = await s.every_way(question, thread_id)
        assert set(replies) == {"/ask", "@mention", "thread"}
        for how, reply in replies.items():
            assert not reply.get("content"), how
            (embed,) = reply["embeds"]
            assert as_read(embed["title"]) == as_typed, how
            assert not live_markdown(embed["title"]), how
            # What the answer was recorded under (`newsbot feedback` shows it) is as clean.
            answer_id = reply["components"][0]["components"][0]["custom_id"].rsplit(":", 1)[1]
            stored = s.bot.feedback.answer(answer_id)
            assert stored is not None and stored.answer.question == as_typed, how
        assert not replies["/ask"].get("flags", 0) & EPHEMERAL

    scenario(settings, fake_embedder, steps)


def test_a_note_naming_many_allowed_channels_still_fits_a_message(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    allowed = [CHANNEL_ID + 10 + i for i in range(120)]
    settings = settings.overridden(allowed_channel_ids=allowed)

    async def steps(s: Session) -> None:
        callback, followup = await s.slash_ask(AID_QUESTION)
        assert followup is None
        note = callback.body["data"]["content"]
        assert note.startswith(f"I only answer questions in <#{allowed[0]}>")
        assert len(note) <= MESSAGE_LIMIT

    scenario(settings, fake_embedder, steps)


# -- buttons and feedback --------------------------------------------------------------------
def test_votes_are_stored_with_question_answer_sources_and_user(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    async def steps(s: Session) -> None:
        _, followup = await s.slash_ask(AID_QUESTION)
        assert followup is not None
        message = message_of(s.fake, followup)
        up, down, _ = custom_ids(followup)
        thanks = await s.click(up, message)
        assert thanks.body["type"] == 4 and thanks.flags & EPHEMERAL
        await s.click(down, message, user_id=USER_ID + 7)
        await s.click(down, message)  # changing one's mind replaces the vote

    scenario(settings, fake_embedder, steps)
    entries = FeedbackLog(settings.index_dir).entries()
    assert sorted((e.user_id, e.vote) for e in entries) == [
        (USER_ID, "down"),
        (USER_ID + 7, "down"),
    ]
    entry = entries[0]
    assert entry.question == AID_QUESTION
    assert "$56.2 billion" in entry.answer and entry.found
    assert entry.sources[0]["title"] == "US aid to Ukraine"
    assert entry.sources[0]["url"] == "https://example.com/2024/11/17/aid"


def test_buttons_of_a_forgotten_answer_or_a_failing_log_answer_politely(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    async def steps(s: Session) -> None:
        _, followup = await s.slash_ask(AID_QUESTION)
        assert followup is not None
        message = message_of(s.fake, followup)
        # An answer the log no longer has (say, feedback.sqlite was deleted).
        answer_id = custom_ids(followup)[0].rsplit(":", 1)[1]
        old = json.loads(json.dumps(message).replace(answer_id, "0123456789abcdef"))
        forgotten = await s.click("newsbot:vote:up:0123456789abcdef", old)
        assert forgotten.flags & EPHEMERAL and forgotten.body["data"]["content"] == FORGOTTEN

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise OSError("disk full")

        s.bot.feedback.vote = broken  # type: ignore[method-assign]
        failed = await s.click(custom_ids(followup)[0], message)
        assert failed.flags & EPHEMERAL
        assert failed.body["data"]["content"].startswith("Something went wrong (ref ")

    scenario(settings, fake_embedder, steps)


def test_more_sources_shows_the_next_passages_only_to_the_clicker(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    settings = settings.overridden(top_k=1)

    async def steps(s: Session) -> None:
        _, followup = await s.slash_ask(AID_QUESTION)
        assert followup is not None
        assert len(embed_of(followup)["fields"]) == 1
        more = await s.click(custom_ids(followup)[2], message_of(s.fake, followup))
        assert more.body["type"] == 4 and more.flags & EPHEMERAL
        embed = more.body["data"]["embeds"][0]
        assert embed["title"] == "More sources"
        assert embed["fields"][0]["name"].startswith("[2] ")

    scenario(settings, fake_embedder, steps)


# -- threads, freshness, failures ---------------------------------------------------------
def test_follow_up_in_a_thread_from_an_answer_is_answered_there(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    async def steps(s: Session) -> None:
        answer = await s.say(f"<@{BOT_ID}> {AID_QUESTION}", mentions=[BOT_USER])
        message = message_of(s.fake, answer)
        thread_id = int(message["id"])  # a thread started from a message shares its id
        await s.fake.dispatch("THREAD_CREATE", {**thread_channel(thread_id), "newly_created": True})
        reply = await s.say("Who won the Chicago Marathon?", channel_id=thread_id)
        assert "Chepngetich" in embed_of(reply)["description"]

    scenario(settings, fake_embedder, steps)


def test_a_reindex_is_answered_from_without_a_restart(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    question = "Which river flooded the old town of Passau?"

    async def steps(s: Session) -> None:
        _, before = await s.slash_ask(question)
        assert before is not None
        assert embed_of(before)["description"].startswith(NOT_COVERED)
        write_article(
            settings.corpus_dir,
            "flood.md",
            "The Danube flooded the old town of Passau on Monday, the mayor said.",
            title="Danube floods Passau",
        )
        await asyncio.to_thread(reindex, settings, fake_embedder)
        _, after = await s.slash_ask(question)
        assert after is not None
        assert "Danube" in embed_of(after)["description"]

    scenario(settings, fake_embedder, steps)


def test_unexpected_error_is_an_ephemeral_ref_and_a_logged_traceback(
    settings: Settings, fake_embedder: FakeEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    async def steps(s: Session) -> None:
        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("disk on fire")

        s.bot.newsbot.ask = broken  # type: ignore[method-assign]
        _, note = await s.slash_ask(AID_QUESTION)
        assert note is not None and note.flags & EPHEMERAL
        ref = re.fullmatch(r"Something went wrong \(ref ([0-9A-F]{6})\)\..*", note.body["content"])
        assert ref is not None
        deleted = s.fake.matching("DELETE", f"{note.path}/messages/@original")
        assert deleted, "the public 'thinking…' placeholder is removed"
        logged = [r for r in caplog.records if ref[1] in r.getMessage()]
        assert logged and logged[0].exc_info and "disk on fire" in str(logged[0].exc_info[1])

    with caplog.at_level(logging.ERROR, logger="newsbot.bot"):
        scenario(settings, fake_embedder, steps)


@pytest.mark.parametrize(
    ("error", "note_text"),
    [
        (StoreUnavailableError("index unavailable: no Chroma server at 127.0.0.1:9"), UNAVAILABLE),
        (IndexMismatchError("the index in idx was built with model 'x'"), REBUILDING),
    ],
)
def test_store_down_or_rebuilding_is_a_short_note_only_to_the_asker(
    settings: Settings, fake_embedder: FakeEmbedder, error: Exception, note_text: str
) -> None:
    async def steps(s: Session) -> None:
        def failing(*args: Any, **kwargs: Any) -> Any:
            raise error

        s.bot.newsbot.ask = failing  # type: ignore[method-assign]
        _, note = await s.slash_ask(AID_QUESTION)
        assert note is not None and note.flags & EPHEMERAL
        assert note.body["content"] == note_text

    scenario(settings, fake_embedder, steps)


def test_the_token_never_reaches_the_log(
    settings: Settings, fake_embedder: FakeEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    async def steps(s: Session) -> None:
        await s.slash_ask(AID_QUESTION)
        await s.say(f"<@{BOT_ID}> {AID_QUESTION}", mentions=[BOT_USER])

    with caplog.at_level(logging.DEBUG):
        scenario(settings, fake_embedder, steps)
    assert caplog.records, "the session logged something"
    assert not [r for r in caplog.records if TOKEN in r.getMessage()]
    secret = TOKEN.split(".")[-1]
    assert secret not in caplog.text


def test_commands_are_synced_to_the_development_guild(
    settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    settings = settings.overridden(discord_guild_id=222222222222222222)

    async def steps(s: Session) -> None:
        synced = s.fake.matching(
            "PUT", f"/applications/{APP_ID}/guilds/222222222222222222/commands"
        )
        assert [c["name"] for c in synced[0].body] == ["ask"]
        option = synced[0].body[0]["options"][0]
        assert (option["name"], option["required"]) == ("question", True)

    scenario(settings, fake_embedder, steps)


# --- feeds synced on a schedule, while the bot answers -------------------------------------


def test_a_scheduled_sync_runs_in_the_background_while_questions_are_answered(
    settings: Settings, fake_embedder: FakeEmbedder, web: WebServer
) -> None:
    settings = settings.overridden(fetch_allow_private=["127.0.0.1"], fetch_timeout=5.0)
    story = (DATA / "web" / "springfield-bridge.html").read_text(encoding="utf-8")
    web.page("/news/bridge", story, delay=1.5)  # the sync takes a while: questions meanwhile
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Courier</title>'
        "<item><title>Bridge</title><link>/news/bridge</link></item></channel></rss>"
    )
    feed = web.route("/rss.xml", Reply(body=rss, content_type="application/rss+xml"))
    FeedList(settings.corpus_dir).add(Feed(feed))
    runs: list[Synced] = []
    synced = threading.Event()

    def done(run: Synced) -> None:
        runs.append(run)
        synced.set()

    schedule = SyncSchedule(settings, fake_embedder, minutes=10, on_done=done)
    bridge = "How much did the Springfield city council vote to spend on the bridge?"
    reindex(settings, fake_embedder)

    async def main() -> None:
        # How long the event loop stalls meanwhile is measured, not asserted, by
        # `benchmarks/bench_bot.py --sync N`: here, that questions are answered at all.
        async with running(settings, fake_embedder, schedule) as s:
            answered = 0
            while not synced.is_set():  # the sync is running: the bot still answers
                _, followup = await s.slash_ask(AID_QUESTION, user_id=USER_ID + 1 + answered)
                assert followup is not None and "56.2 billion" in embed_of(followup)["description"]
                answered += 1
            _, after = await s.slash_ask(bridge)
        assert answered >= 2, "no question was answered while the sync ran"
        assert after is not None and "3.2 million" in embed_of(after)["description"]

    asyncio.run(main())
    [run] = runs  # the next one is 10 minutes away
    assert run.index is not None and run.sync.count(Saved.ADDED) == 1
    assert web.hits("/news/bridge") == 1


def test_a_failed_scheduled_run_is_reported_and_the_next_one_still_runs(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    (settings.corpus_dir / "feeds.yaml").write_text("- url: [broken\n")
    errors: list[BaseException] = []
    again = threading.Event()

    def failed(error: BaseException) -> None:
        errors.append(error)
        if len(errors) == 2:
            again.set()

    schedule = SyncSchedule(settings, fake_embedder, minutes=0.001, on_error=failed)
    schedule.start()
    try:
        assert again.wait(10)
    finally:
        schedule.stop(5)
    assert "feeds.yaml is not valid YAML" in str(errors[0])


# -- what the answer is made from ------------------------------------------------------------
@pytest.mark.parametrize("how", ["/ask", "@mention"])
def test_a_question_is_asked_on_the_utc_date_its_message_was_sent(
    settings: Settings, fake_embedder: FakeEmbedder, how: str
) -> None:
    # The aid article is from 2024-11-17: a question sent the day before cannot be about it,
    # one sent on the 17th can. 08:00 on the 17th in Sydney is still the 16th in UTC.
    before = datetime(2024, 11, 16, 23, 30, tzinfo=UTC)
    on_the_day = datetime(2024, 11, 17, 8, 0, tzinfo=timezone(timedelta(hours=10)))

    async def ask(s: Session, at: datetime) -> str:
        if how == "/ask":
            _, followup = await s.slash_ask(AID_QUESTION, at=at)
            assert followup is not None
            return str(embed_of(followup)["description"])
        reply = await s.say(f"<@{BOT_ID}> {AID_QUESTION}", mentions=[BOT_USER], at=at)
        return str(embed_of(reply)["description"])

    async def steps(s: Session) -> None:
        assert "$56.2 billion" not in await ask(s, before)
        assert "$56.2 billion" not in await ask(s, on_the_day)  # 2024-11-16 in UTC
        assert "$56.2 billion" in await ask(s, on_the_day + timedelta(hours=14))

    scenario(settings, fake_embedder, steps)


def test_the_model_reads_as_many_passages_from_discord_as_from_the_command_line(
    env: Path,
    settings: Settings,
    fake_embedder: FakeEmbedder,
    corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    places = "Kyiv Lviv Odesa Kharkiv Dnipro Poltava Sumy Chernihiv Rivne Lutsk Uzhhorod Ternopil"
    for n, place in enumerate(places.split()):  # more passages than are read and listed
        write_article(
            corpus,
            f"aid/{place}.md",
            f"In {place}, volunteers unloaded {n + 3} trucks of winter clothing, generators "
            f"and medicine sent from {place.upper()} partner cities in {1990 + n}.",
            title=f"Deliveries reach {place}",
            source=f"{place} Herald",
        )
    model = Recording(responses=[model_reply(not_covered=True)] * 2)
    chat_models = types.ModuleType("langchain.chat_models")
    chat_models.init_chat_model = lambda name, **kwargs: model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain", types.ModuleType("langchain"))
    monkeypatch.setitem(sys.modules, "langchain.chat_models", chat_models)
    monkeypatch.setenv("NEWSBOT_LLM", "openai:fake")
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0
    assert runner.invoke(app, ["ask", AID_QUESTION, "--json"]).exit_code == 0

    async def steps(s: Session) -> None:
        _, followup = await s.slash_ask(AID_QUESTION)
        assert followup is not None
        assert s.bot.newsbot.search(AID_QUESTION, k=20)[10:], "more passages than read"

    scenario(settings.overridden(llm="openai:fake"), fake_embedder, steps)

    sent = [re.findall(r"^<passage n=", str(messages[-1].content), re.M) for messages in model.seen]
    assert [len(passages) for passages in sent] == [settings.top_k, settings.top_k]


def test_a_message_date_is_its_utc_date() -> None:
    assert asked_on(datetime(2024, 11, 17, 8, 0, tzinfo=timezone(timedelta(hours=10)))) == (
        "2024-11-16"
    )
    assert asked_on(datetime(2024, 11, 16, 23, 59, tzinfo=UTC)) == "2024-11-16"

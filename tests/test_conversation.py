"""Conversations: follow-ups understood with the earlier turns, in `Newsbot.ask`, in a
Discord thread or reply chain (through the fake Discord), and in `newsbot chat`."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from pydantic import Field
from typer.testing import CliRunner

from index.answer.conversation import (
    Conversation,
    LlmRewriter,
    RuleRewriter,
    Turn,
    borrow_subject,
    recent,
)
from index.build.reindex import reindex
from index.cli.app import app
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import write_article
from tests.fake_discord import APP_ID, BOT_ID, BOT_USER, CHANNEL_ID, thread_channel
from tests.fakes import FakeEmbedder
from tests.test_bot import AID_QUESTION, Session, embed_of, message_of, scenario

runner = CliRunner()

US = AID_QUESTION  # "How much military aid has the United States sent to Ukraine?"


def add_aid_articles(corpus: Path) -> None:
    """Beside the tiny corpus's US aid article: Germany's and France's."""
    write_article(
        corpus,
        "germany.md",
        "Germany has sent 28 billion euros in military aid to Ukraine, the defence ministry "
        "in Berlin said on Tuesday.",
        title="German aid to Ukraine",
        source="Berlin Daily",
        url="https://example.de/aid",
    )
    write_article(
        corpus,
        "france.md",
        "France has sent 3.7 billion euros in military aid to Ukraine, the Elysee said.",
        title="French aid to Ukraine",
        source="Paris Post",
        url="https://example.fr/aid",
    )


@pytest.fixture
def aid_settings(settings: Settings, corpus: Path, fake_embedder: FakeEmbedder) -> Settings:
    add_aid_articles(corpus)
    reindex(settings, fake_embedder)
    return settings


# -- the rule ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("previous", "follow_up", "standalone"),
    [
        (US, "and Germany?", "How much military aid has Germany sent to Ukraine?"),
        (US, "What about France?", "How much military aid has France sent to Ukraine?"),
        (US, "Germany?", "How much military aid has Germany sent to Ukraine?"),
        ("Who won the election in Germany?", "and in France?", "Who won the election in France?"),
        (
            "How much aid has Germany sent?",
            "and to Poland?",
            "How much aid has Germany sent: to Poland?",
        ),
        (
            "How much aid has the US sent?",
            "what about last week?",
            "How much aid has the US sent last week?",
        ),
        (
            "How many people died in Gaza in 2024?",
            "and in 2023?",
            "How many people died in Gaza in 2023?",
        ),
        (
            "What did Biden's team say about Gaza?",
            "and Trump?",
            "What did Trump's team say about Gaza?",
        ),
        (
            "Why did Rishi Sunak call an election?",
            "when did he resign?",
            "when did he resign? (about Rishi Sunak)",
        ),
        ("Who resigned as prime minister?", "why?", "Why: Who resigned as prime minister?"),
        (US, "tell me more", US),
        ("How much aid has the US sent?", "and tanks?", "How much aid has the US sent: tanks?"),
        # Questions that stand on their own are left alone.
        (US, "Who won the Chicago Marathon?", "Who won the Chicago Marathon?"),
        (US, "When did Germany send tanks?", "When did Germany send tanks?"),
    ],
)
def test_an_elliptical_follow_up_borrows_the_previous_subject(
    previous: str, follow_up: str, standalone: str
) -> None:
    assert borrow_subject(follow_up, previous) == standalone


def test_the_rule_needs_a_previous_question() -> None:
    assert RuleRewriter().standalone("and Germany?", []) == "and Germany?"
    turns = [Turn("Who won?", "x"), Turn(US, "y")]
    assert (
        RuleRewriter()
        .standalone("and Germany?", turns)
        .startswith("How much military aid has Germany")
    )


def test_a_conversation_keeps_its_last_turns_and_forgets_on_reset() -> None:
    conversation = Conversation(turns=2)
    for n in range(4):
        conversation.add(f"q{n}", f"a{n}")
    assert conversation.history == [Turn("q2", "a2"), Turn("q3", "a3")]
    conversation.reset()
    assert conversation.history == []
    off = Conversation(turns=0)
    off.add("q", "a")
    assert off.history == []
    assert recent([Turn("a", "b"), Turn("c", "d")], 1) == [Turn("c", "d")]
    assert recent([Turn("a", "b")], 0) == []


# -- with a language model -----------------------------------------------------------------
class Recording(FakeListChatModel):
    """A fake chat model that records the messages it is sent."""

    seen: list[Any] = Field(default_factory=list)

    def _call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        self.seen.append(messages)
        return super()._call(messages, *args, **kwargs)


def test_a_language_model_rewrites_the_follow_up_from_the_history() -> None:
    model = Recording(responses=["How much military aid has Germany sent to Ukraine?"])
    rewriter = LlmRewriter(model, timeout=5)
    history = [Turn(US, "The United States has sent $56.2 billion [1].")]

    assert rewriter.standalone("and Germany?", history) == (
        "How much military aid has Germany sent to Ukraine?"
    )
    sent = model.seen[0]
    assert [m.type for m in sent] == ["system", "human", "ai", "human"]
    assert "standalone question" in sent[0].content
    assert sent[1].content == US and "$56.2 billion" in sent[2].content
    assert sent[3].content == "and Germany?"
    assert rewriter.standalone("Who won?", []) == "Who won?"  # no history: no model call
    assert len(model.seen) == 1


class Failing(GenericFakeChatModel):
    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("sk-secret-key at https://llm.example/v1")


class Slow(GenericFakeChatModel):
    release: Any = None

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        self.release.wait(10)
        return super()._generate(*args, **kwargs)


@pytest.mark.parametrize("how", ["error", "timeout", "empty", "an essay"])
def test_a_failing_model_falls_back_on_the_rule_with_one_log_line(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    model: Any
    if how == "error":
        model = Failing(messages=iter([]))
    elif how == "timeout":
        model = Slow(messages=iter([AIMessage("How much has Germany sent?")]), release=release)
    else:
        text = "" if how == "empty" else "Germany has sent a great deal. " * 40
        model = GenericFakeChatModel(messages=iter([AIMessage(text)]))
    rewriter = LlmRewriter(model, timeout=0.2)
    history = [Turn(US, "The United States has sent $56.2 billion [1].")]
    try:
        with caplog.at_level(logging.WARNING):
            rewritten = rewriter.standalone("and Germany?", history)
    finally:
        release.set()

    assert rewritten == "How much military aid has Germany sent to Ukraine?"
    lines = [r.getMessage() for r in caplog.records if r.name == "index.answer.conversation"]
    assert len(lines) == 1 and "rewritten by rule" in lines[0]
    assert "sk-secret" not in caplog.text and "llm.example" not in caplog.text


# -- Newsbot.ask ---------------------------------------------------------------------------
def test_a_follow_up_is_answered_from_the_right_article(
    aid_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    bot = Newsbot(aid_settings, fake_embedder)
    try:
        first = bot.ask(US)
        second = bot.ask("and Germany?", history=[Turn(first.question, first.answer)])
        third = bot.ask(
            "what about France?",
            history=[Turn(first.question, first.answer), Turn(second.question, second.answer)],
        )
    finally:
        bot.close()

    assert first.citations[0].article_id == "aid.md" and first.follow_up is None
    assert second.question == "How much military aid has Germany sent to Ukraine?"
    assert second.follow_up == "and Germany?"
    assert second.citations[0].article_id == "germany.md"
    assert "28 billion euros" in second.answer
    assert third.question == "How much military aid has France sent to Ukraine?"
    assert third.citations[0].article_id == "france.md"
    assert "3.7 billion euros" in third.answer


def test_with_no_turns_kept_every_question_stands_alone(
    aid_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    bot = Newsbot(aid_settings.model_copy(update={"chat_turns": 0}), fake_embedder)
    try:
        answer = bot.ask("and Germany?", history=[Turn(US, "The United States has sent…")])
    finally:
        bot.close()
    assert answer.question == "and Germany?" and answer.follow_up is None


# -- newsbot chat --------------------------------------------------------------------------
@pytest.fixture
def chat_env(env: Path, corpus: Path) -> Iterator[Path]:
    add_aid_articles(corpus)
    indexed = runner.invoke(app, ["index"])
    assert indexed.exit_code == 0, indexed.output
    yield env


def chat(lines: list[str], *args: str) -> list[dict[str, Any]]:
    """`newsbot chat --json` fed `lines`: the answers it printed."""
    result = runner.invoke(app, ["chat", "--json", *args], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_newsbot_chat_answers_follow_ups_in_context(chat_env: Path) -> None:
    first, second, third = chat([US, "and Germany?", "what about France?"])

    assert first["citations"][0]["article_id"] == "aid.md"
    assert second["question"] == "How much military aid has Germany sent to Ukraine?"
    assert second["follow_up"] == "and Germany?"
    assert second["citations"][0]["article_id"] == "germany.md"
    assert third["citations"][0]["article_id"] == "france.md"
    assert "3.7 billion euros" in third["answer"]


def test_newsbot_chat_reset_forgets_the_conversation(chat_env: Path) -> None:
    answers = chat([US, "/reset", "and Germany?", "/quit", "and France?"])
    assert len(answers) == 2  # nothing is asked after /quit
    assert answers[1]["question"] == "and Germany?" and answers[1]["follow_up"] is None


def test_newsbot_chat_shows_how_it_understood_a_follow_up(chat_env: Path) -> None:
    result = runner.invoke(app, ["chat"], input=f"{US}\nand Germany?\n/nonsense\n")
    assert result.exit_code == 0, result.output
    assert "(How much military aid has Germany sent to Ukraine?)" in result.stdout
    assert "German aid to Ukraine" in result.stdout and "Berlin Daily" in result.stdout
    assert "unknown command /nonsense" in result.stderr


# -- Discord: a thread started from an answer, and a chain of replies ----------------------
class Heard:
    """Wraps a bot's rewriter: records the history each follow-up came with."""

    def __init__(self, s: Session) -> None:
        self.inner = s.bot.newsbot.rewriter
        self.histories: list[list[Turn]] = []
        s.bot.newsbot.rewriter = self

    def standalone(self, question: str, history: Any) -> str:
        self.histories.append(list(history))
        return self.inner.standalone(question, history)

    def questions(self) -> list[list[str]]:
        return [[t.question for t in h] for h in self.histories]


GERMANY = "How much military aid has Germany sent to Ukraine?"
FRANCE = "How much military aid has France sent to Ukraine?"


def test_a_three_turn_conversation_in_a_thread_is_answered_in_context(
    settings: Settings, corpus: Path, fake_embedder: FakeEmbedder
) -> None:
    add_aid_articles(corpus)

    async def steps(s: Session) -> None:
        heard = Heard(s)
        thread_id = await s.thread_on_an_answer()  # on the answer to US, asked by @mention
        second = await s.say("and Germany?", channel_id=thread_id)
        third = await s.say("what about France?", channel_id=thread_id)
        # /ask in the thread is a follow-up too.
        data = s.fake.slash_ask("and the United States?", channel_id=thread_id)
        data["channel"] = {**thread_channel(thread_id)}
        start = len(s.fake.requests)
        await s.fake.dispatch("INTERACTION_CREATE", data)
        fourth = await s.fake.wait_for(
            lambda r: r.method == "POST" and r.path == f"/webhooks/{APP_ID}/{data['token']}",
            after=start,
        )

        assert embed_of(second)["title"] == GERMANY
        assert "28 billion euros" in embed_of(second)["description"]
        assert "Berlin Daily" in embed_of(second)["fields"][0]["name"]
        assert embed_of(third)["title"] == FRANCE
        assert "3.7 billion euros" in embed_of(third)["description"]
        assert embed_of(fourth)["title"] == US  # "and the United States?" in context
        assert "$56.2 billion" in embed_of(fourth)["description"]
        # The conversation was read back from Discord: the starter, then the thread, in order.
        assert heard.questions() == [[US], [US, GERMANY], [US, GERMANY, FRANCE]]
        answers = [t.answer for t in heard.histories[-1]]
        assert "$56.2 billion" in answers[0] and "28 billion euros" in answers[1]
        assert not any("**" in a or "\\" in a for a in answers)  # as the user read them
        assert s.fake.matching("GET", f"/channels/{CHANNEL_ID}/messages/{thread_id}")
        assert s.fake.matching("GET", f"/channels/{thread_id}/messages")

    scenario(settings, fake_embedder, steps)


def test_a_reply_to_an_answer_is_a_follow_up_up_the_chain_of_replies(
    settings: Settings, corpus: Path, fake_embedder: FakeEmbedder
) -> None:
    add_aid_articles(corpus)

    async def steps(s: Session) -> None:
        heard = Heard(s)
        first = await s.say(f"<@{BOT_ID}> {US}", mentions=[BOT_USER])
        second = await s.say("and Germany?", reply_to=message_of(s.fake, first))
        # Replying to the second answer, as Discord sends it: only the id of what it replies to.
        third = await s.say("what about France?", reply_to=message_of(s.fake, second))
        # A reply to somebody else's message is not a question to the bot.
        start = len(s.fake.requests)
        chat = s.fake.message("nice", reply_to=s.fake.message("hello"))
        await s.fake.dispatch("MESSAGE_CREATE", chat)
        await asyncio.sleep(0.2)

        assert embed_of(second)["title"] == GERMANY
        assert "28 billion euros" in embed_of(second)["description"]
        assert embed_of(third)["title"] == FRANCE
        assert "3.7 billion euros" in embed_of(third)["description"]
        assert not [r for r in s.fake.requests[start:] if r.method == "POST"]
        assert heard.questions() == [[US], [US, GERMANY]]

    scenario(settings, fake_embedder, steps)


def test_with_no_turns_kept_a_thread_follow_up_stands_alone(
    settings: Settings, corpus: Path, fake_embedder: FakeEmbedder
) -> None:
    add_aid_articles(corpus)
    settings = settings.model_copy(update={"chat_turns": 0})

    async def steps(s: Session) -> None:
        thread_id = await s.thread_on_an_answer()
        second = await s.say("and Germany?", channel_id=thread_id)
        assert embed_of(second)["title"] == "and Germany?"
        assert not s.fake.matching("GET", f"/channels/{thread_id}/messages")

    scenario(settings, fake_embedder, steps)


def real_model_corpus(tmp_path: Path) -> Path:
    """The three aid articles and one on something else."""
    corpus = tmp_path / "corpus"
    write_article(
        corpus,
        "aid.md",
        "The United States has sent $56.2 billion in military aid to Ukraine since 2022.\n\n"
        "Officials said more help would follow in the spring.",
        title="US aid to Ukraine",
        source="Example News",
    )
    add_aid_articles(corpus)
    write_article(
        corpus,
        "marathon.md",
        "Kenyan runner Ruth Chepngetich won the Chicago Marathon in a world record time.",
        title="Chepngetich breaks marathon record",
    )
    return corpus


@pytest.mark.integration
def test_a_thread_conversation_with_the_real_embedding_model(
    tmp_path: Path, simple_model: Path
) -> None:
    """As `newsbot bot` runs: the bundled model embeds the articles and the follow-ups."""
    settings = Settings(
        corpus_dir=real_model_corpus(tmp_path),
        index_dir=tmp_path / "index",
        answer_model=simple_model,
        reader="off",
    )
    embedder = load_embedder(settings, purpose="query")
    assert not isinstance(embedder, FakeEmbedder)

    async def steps(s: Session) -> None:
        thread_id = await s.thread_on_an_answer()
        second = await s.say("and Germany?", channel_id=thread_id)
        third = await s.say("what about France?", channel_id=thread_id)

        assert embed_of(second)["title"] == GERMANY
        assert "Berlin Daily" in embed_of(second)["fields"][0]["name"]
        assert embed_of(third)["title"] == FRANCE
        assert "Paris Post" in embed_of(third)["fields"][0]["name"]

    scenario(settings, embedder, steps)  # type: ignore[arg-type]


@pytest.mark.integration
def test_newsbot_chat_with_the_real_embedding_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simple_model: Path
) -> None:
    """The bundled all-MiniLM-L6-v2 retrieves (with BM25) for the rewritten follow-ups; the
    hand-set answer model cites what was retrieved, so the test reads the retrieval."""
    corpus = real_model_corpus(tmp_path)
    monkeypatch.setenv("NEWSBOT_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("NEWSBOT_READER", "off")
    monkeypatch.setenv("NEWSBOT_ANSWER_MODEL", str(simple_model))
    indexed = runner.invoke(app, ["index"])
    assert indexed.exit_code == 0, indexed.output

    first, second, third = chat([US, "and Germany?", "what about France?"])

    assert [a["citations"][0]["article_id"] for a in (first, second, third)] == [
        "aid.md",
        "germany.md",
        "france.md",
    ]
    assert second["question"] == GERMANY and third["question"] == FRANCE


def test_with_a_language_model_newsbot_has_it_rewrite_follow_ups(
    aid_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """The model that writes the answers rewrites the follow-up; its answer is checked."""
    claim = {
        "text": "France has sent 3.7 billion euros.",
        "sources": [1],
        "quote": "France has sent 3.7 billion euros in military aid",
    }
    model = Recording(
        responses=[
            "How much military aid has France sent to Ukraine?",  # the rewrite
            json.dumps({"not_covered": False, "claims": [claim]}),  # the answer
        ]
    )
    bot = Newsbot(aid_settings, fake_embedder, chat_model=model)
    try:
        assert isinstance(bot.rewriter, LlmRewriter)
        answer = bot.ask("and the French?", history=[Turn(US, "The US has sent $56.2 billion.")])
    finally:
        bot.close()

    assert answer.question == FRANCE and answer.follow_up == "and the French?"
    assert answer.mode == "llm" and answer.citations[0].article_id == "france.md"
    rewrite = model.seen[0]
    assert rewrite[-1].content == "and the French?" and rewrite[1].content == US

"""The language-model answer through the real `ChatOpenAI` client, against a fake
OpenAI-compatible server on 127.0.0.1 answering from a script (tests/fake_openai.py).

Each scripted case is asked on the command line (`newsbot ask --json` in-process, the plain
output from the real program in a subprocess) and in Discord (the real bot, the answer step
`build_answerer` makes from the settings, against the fake Discord), and asserts what the
user sees: the model's checked answer, or the offline one; never an invented citation or
quote; one log line, without the key or the passages, on each failure.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from bot.render import MODEL_GAVE_NONE, MODEL_LEFT_OUT, WRITTEN_BY_MODEL
from index.answer.types import MODE_EXTRACTIVE, MODE_LLM, MODEL_FAILED, NOTHING_VERIFIED
from index.cli.app import app
from index.models.chat import load_chat_model
from index.models.structured import PROCESS_MEMORY
from index.settings import Settings
from tests.conftest import write_article
from tests.fake_openai import MODEL, Reply, answer_with, completion, error, serving
from tests.fakes import FakeEmbedder
from tests.test_bot import Session, embed_of, scenario, sent_messages

QUESTION = "Who won the darts world championship final?"
ASKED_ON = "2024-01-10"
WON = (
    "Luke Humphries won the darts world championship final, beating Luke Littler by seven "
    "sets to four."
)
AUDIENCE = "The final drew a record television audience of 3.7 million viewers on Wednesday."
QUEUES = "Fans queued for hours outside Alexandra Palace before the darts final began."
PASSAGES = (WON, AUDIENCE, QUEUES)
KEY = "sk-newsroom-test-key-0123456789abcdef"
LOGGER = "index.answer.llm"
MAX_TOKENS = 321
NEWSBOT = Path(__file__).resolve().parent / "newsbot_fake.py"

# The model's claims: (sentence, words of the passage it cites or a number, quote).
AUDIENCE_CLAIM = (
    "A record 3.7 million people watched on television.",
    "record television audience",
    "a Record Television Audience of 3.7 million",  # case aside, as in the passage
)
WINNER_CLAIM = (
    "Luke Humphries is the new world champion.",
    "Humphries won",
    "Luke Humphries won the darts world championship",
)
NO_SUCH_PASSAGE = (  # the quote is real, from passage "final": its number is not
    "Humphries took home half a million pounds.",
    9,
    "beating Luke Littler by seven sets",
)
QUOTE_NOT_IN_IT = (
    "Humphries threw a nine-dart finish in the final.",
    "Humphries won",
    "threw a perfect nine-dart finish",
)
# A reply far past NEWSBOT_LLM_MAX_TOKENS (a server that ignores it): one 5 MB sentence, or
# 20,000 sentences, each quoting the passage truly.
BOUNDLESS = "Humphries was carried shoulder high around the hall by the crowd. "
HUGE_CLAIM = (BOUNDLESS * 80_000, "Humphries won", WINNER_CLAIM[2])
OFFLINE_IN_DISCORD = f"**Luke Humphries** {WON.removeprefix('Luke Humphries ')} [1]"  # in bold
DRIPPING = 60  # seconds: far longer than a run of `newsbot ask` takes (`test_ask_in_a_terminal…`)
MALFORMED = '{"not_covered": false, "claims": [{"text": "Humphries sealed it with a nine-darter'


@dataclass(frozen=True)
class Case:
    """A scripted reply and what the user must see."""

    reply: Callable[[], Reply]
    mode: str
    dropped: int = 0
    answer: str | None = None  # the model's answer shown; None: the offline answer
    first_source: str = "Humphries is world champion"  # the title of source [1]
    invented: tuple[str, ...] = ()  # text that must reach no user
    warning: str | None = None  # the one log line's kind, on a failure
    timeout: float = 10.0
    footer: str | None = None  # the note over the usual footer in Discord
    fallback: str | None = None  # why the offline answer was given (`ask --json`)


CASES = {
    "good-answer": Case(
        lambda: answer_with(AUDIENCE_CLAIM, WINNER_CLAIM),
        MODE_LLM,
        answer=f"{AUDIENCE_CLAIM[0]} [1] {WINNER_CLAIM[0]} [2]",
        first_source="Record audience for the final",
        footer=WRITTEN_BY_MODEL,
    ),
    "no-such-passage": Case(
        lambda: answer_with(NO_SUCH_PASSAGE),
        MODE_EXTRACTIVE,
        dropped=1,
        invented=("half a million", "[9]"),
        warning="none of its 1 claim(s) verified",
        footer=f"{MODEL_LEFT_OUT} (1 unsupported sentence)",
        fallback=NOTHING_VERIFIED,
    ),
    "quote-not-in-passage": Case(
        lambda: answer_with(QUOTE_NOT_IN_IT),
        MODE_EXTRACTIVE,
        dropped=1,
        invented=("nine-dart",),
        warning="none of its 1 claim(s) verified",
        footer=f"{MODEL_LEFT_OUT} (1 unsupported sentence)",
        fallback=NOTHING_VERIFIED,
    ),
    "half-verified": Case(
        lambda: answer_with(WINNER_CLAIM, QUOTE_NOT_IN_IT),
        MODE_LLM,
        dropped=1,
        answer=f"{WINNER_CLAIM[0]} [1]",
        invented=("nine-dart",),
        footer=f"{WRITTEN_BY_MODEL} · 1 unsupported sentence left out",
    ),
    "malformed-json": Case(
        lambda: Reply(completion(MALFORMED)),
        MODE_EXTRACTIVE,
        invented=("nine-darter",),
        warning="malformed output",
        footer=MODEL_GAVE_NONE,
        fallback=MODEL_FAILED,
    ),
    "slower-than-the-timeout": Case(
        lambda: Reply(answer_with(AUDIENCE_CLAIM).body, delay=30),
        MODE_EXTRACTIVE,
        invented=(AUDIENCE_CLAIM[0],),
        warning="timed out",
        footer=MODEL_GAVE_NONE,
        fallback=MODEL_FAILED,
        timeout=1.0,
    ),
    # The client's read timeout never fires (a byte comes every 0.1 s): only newsbot's does.
    "dripping-past-the-timeout": Case(
        lambda: Reply(answer_with(AUDIENCE_CLAIM).body, drip=DRIPPING),
        MODE_EXTRACTIVE,
        invented=(AUDIENCE_CLAIM[0],),
        warning="timed out",
        footer=MODEL_GAVE_NONE,
        fallback=MODEL_FAILED,
        timeout=1.0,
    ),
    "a-5-MB-claim": Case(
        lambda: answer_with(HUGE_CLAIM),
        MODE_EXTRACTIVE,
        invented=(BOUNDLESS.strip(),),
        warning="reply too long",
        footer=MODEL_GAVE_NONE,
        fallback=MODEL_FAILED,
    ),
    "20000-claims": Case(
        lambda: answer_with(*[(BOUNDLESS.strip(), "Humphries won", WINNER_CLAIM[2])] * 20_000),
        MODE_EXTRACTIVE,
        invented=(BOUNDLESS.strip(),),
        warning="reply too long",
        footer=MODEL_GAVE_NONE,
        fallback=MODEL_FAILED,
    ),
    "429": Case(
        lambda: error(
            429,
            f"Rate limit reached for {MODEL}: 3 requests per min. Please try again in 30s.",
            **{"retry-after": "30"},
        ),
        MODE_EXTRACTIVE,
        invented=("Rate limit reached",),
        warning="rate limited",
        footer=MODEL_GAVE_NONE,
        fallback=MODEL_FAILED,
    ),
}
cases = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Three one-passage articles about a darts final."""
    root = tmp_path / "corpus"
    write_article(
        root,
        "final.md",
        WON,
        title="Humphries is world champion",
        source="Sports Daily",
        published="2024-01-03",
        url="https://example.com/2024/01/03/final",
    )
    write_article(
        root,
        "audience.md",
        AUDIENCE,
        title="Record audience for the final",
        source="Media Week",
        published="2024-01-01",
    )
    write_article(
        root,
        "queues.md",
        QUEUES,
        title="Fans queue at Alexandra Palace",
        source="Evening Post",
        published="2024-01-02",
    )
    return root


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from this machine's environment changes where the client goes."""
    for name in list(os.environ):
        if name.upper().endswith("_PROXY") or name.startswith(("OPENAI_", "LANGSMITH_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("LANGCHAIN_TRACING_V2", raising=False)
    PROCESS_MEMORY.forget()  # each test's server is new to the process


def llm_env(monkeypatch: pytest.MonkeyPatch, url: str, timeout: float) -> None:
    monkeypatch.setenv("NEWSBOT_LLM", f"openai:{MODEL}")
    monkeypatch.setenv("NEWSBOT_LLM_BASE_URL", url)
    monkeypatch.setenv("NEWSBOT_LLM_API_KEY", KEY)
    monkeypatch.setenv("NEWSBOT_LLM_TIMEOUT", str(timeout))
    monkeypatch.setenv("NEWSBOT_LLM_MAX_TOKENS", str(MAX_TOKENS))


def ask_json(
    runner: CliRunner, question: str = QUESTION, asked_on: str = ASKED_ON
) -> dict[str, Any]:
    result = runner.invoke(app, ["ask", question, "--json", "--asked-on", asked_on])
    assert result.exit_code == 0, result.output
    assert KEY not in result.output
    return dict(json.loads(result.stdout))


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def assert_logs_keep_secrets(caplog: pytest.LogCaptureFixture) -> None:
    assert KEY not in caplog.text
    for passage in PASSAGES:
        assert passage not in caplog.text


def assert_one_line_or_none(warning: str | None, lines: list[str]) -> None:
    """No line, or one naming `warning` and saying the offline answer was given."""
    if warning is None:
        assert lines == []
    else:
        assert len(lines) == 1, lines
        assert lines[0].startswith("language model: ") and warning in lines[0], lines
        assert lines[0].endswith("; the offline answer")


# -- the command line ------------------------------------------------------------------------
@cases
def test_ask_json_shows_the_checked_answer_or_the_offline_one(
    case: Case, env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0
    offline = ask_json(runner)
    caplog.clear()

    with serving([case.reply()]) as server:
        llm_env(monkeypatch, server.url, case.timeout)
        started = time.perf_counter()
        shown = ask_json(runner)
        waited = time.perf_counter() - started

    assert (shown["mode"], shown["dropped_claims"]) == (case.mode, case.dropped)
    assert shown["fallback"] == case.fallback
    assert shown["citations"][0]["title"] == case.first_source
    if case.answer is None:
        assert offline["mode"] == MODE_EXTRACTIVE and offline["answer"] == f"{WON} [1]"
        how = ("latency_ms", "claims", "dropped_claims", "fallback", "ungrounded_claims")
        assert {k: v for k, v in shown.items() if k not in how} == {
            k: v for k, v in offline.items() if k not in how
        }
    else:
        assert shown["answer"] == case.answer
        for citation in shown["citations"]:
            start, end = citation["highlight"]
            assert citation["passage"] in PASSAGES and end - start >= len("a b c")
    text = json.dumps(shown, ensure_ascii=False)
    for invented in case.invented:
        assert invented not in text
    assert waited < case.timeout + 8  # never the 30 s delay, nor Retry-After's 30 s
    assert len(server.requests) == 1  # no retries by the client
    assert_one_line_or_none(case.warning, warnings_logged(caplog))
    assert_logs_keep_secrets(caplog)


def test_a_good_answer_cites_its_sources_in_order_of_first_citation(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0

    with serving([answer_with(AUDIENCE_CLAIM, WINNER_CLAIM)]) as server:
        llm_env(monkeypatch, server.url, 10)
        shown = ask_json(runner)

    # Sent as [2] and [1] (or [3] and [1]): shown as [1] and [2], the order first cited.
    (request,) = server.requests
    assert request.number_of("record television audience") > request.number_of("Humphries won")
    first, second = shown["citations"][:2]
    assert (first["n"], first["title"], first["source"]) == (
        1,
        "Record audience for the final",
        "Media Week",
    )
    assert (second["n"], second["title"], second["url"]) == (
        2,
        "Humphries is world champion",
        "https://example.com/2024/01/03/final",
    )
    # The exact words quoted, highlighted in the passage as written.
    start, end = first["highlight"]
    assert first["passage"][start:end] == "a record television audience of 3.7 million"
    start, end = second["highlight"]
    assert second["passage"][start:end] == WINNER_CLAIM[2]
    assert {c["role"] for c in shown["citations"][:2]} == {"support"}


def test_the_provider_is_sent_the_passages_the_question_and_the_key_as_bearer(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0

    with serving([answer_with(WINNER_CLAIM)]) as server:
        llm_env(monkeypatch, server.url, 10)
        ask_json(runner)

    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == MODEL
    assert request.body["max_completion_tokens"] == MAX_TOKENS  # NEWSBOT_LLM_MAX_TOKENS
    # The schema as a JSON-schema response format, as with_structured_output(LlmAnswer) sends.
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"not_covered", "claims"}
    assert sorted(request.passages().values()) == sorted(PASSAGES)
    assert (
        '<passage n="{}" title="Humphries is world champion" source="Sports Daily" '
        'date="2024-01-03">\n{}\n</passage>'.format(request.number_of("Humphries won"), WON)
    ) in request.text
    assert request.text.endswith(f"Asked on {ASKED_ON}: {QUESTION}")
    assert KEY not in json.dumps(request.body)  # the key goes in the header only


def test_the_client_is_made_without_retries_of_its_own() -> None:
    model = load_chat_model(Settings(llm=f"openai:{MODEL}", llm_api_key=SecretStr(KEY)))

    assert getattr(model, "max_retries", None) == 0


@cases
def test_ask_in_a_terminal_shows_the_answer_and_at_most_one_line_on_stderr(
    case: Case, env: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder
) -> None:
    """The real program, in a process of its own: what a user of `newsbot ask` sees."""
    assert CliRunner().invoke(app, ["index"]).exit_code == 0

    with serving([case.reply()]) as server:
        llm_env(monkeypatch, server.url, case.timeout)
        result = subprocess.run(
            [sys.executable, str(NEWSBOT), "ask", QUESTION, "--asked-on", ASKED_ON],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "400", "PYTHONIOENCODING": "utf-8"},
            timeout=DRIPPING / 2,  # it exits once it has answered, whatever the model does
        )

    assert result.returncode == 0, result.stderr
    answer = case.answer or f"{WON} [1]"  # the model's, or the offline answer
    assert result.stdout.startswith(f"{answer}\n\n[1] {case.first_source} — "), result.stdout
    for invented in case.invented:
        assert invented not in result.stdout
    assert_one_line_or_none(case.warning, result.stderr.splitlines())
    assert KEY not in result.stdout + result.stderr
    assert not any(p in result.stderr for p in PASSAGES)


# -- Discord --------------------------------------------------------------------------------
@cases
def test_discord_shows_the_checked_answer_or_the_offline_one_with_a_footer_note(
    case: Case,
    settings: Settings,
    fake_embedder: FakeEmbedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serving([case.reply()]) as server:
        with_llm = settings.overridden(
            llm=f"openai:{MODEL}",
            llm_base_url=server.url,
            llm_api_key=SecretStr(KEY),
            llm_timeout=case.timeout,
        )

        async def steps(s: Session) -> None:
            _, followup = await s.slash_ask(QUESTION)
            assert followup is not None
            embed = embed_of(followup)
            description, footer = embed["description"], embed["footer"]["text"]
            if case.answer is None:  # the offline answer
                assert description == OFFLINE_IN_DISCORD
            else:
                assert description == case.answer
            first = embed["fields"][0]
            assert first["name"].startswith("[1] ") and case.first_source in first["value"]
            if case.footer is None:
                assert footer.startswith("Answered in "), footer
            else:
                assert footer.startswith(f"{case.footer}\nAnswered in "), footer
            sent = json.dumps(sent_messages(s.fake), ensure_ascii=False)
            for invented in case.invented:
                assert invented not in sent
            assert KEY not in sent

        with caplog.at_level(logging.INFO):
            scenario(with_llm, fake_embedder, steps)

    assert len(server.requests) == 1
    ours = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert_one_line_or_none(case.warning, ours)
    assert_logs_keep_secrets(caplog)


def test_discord_names_the_sources_in_order_of_first_citation(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    with serving([answer_with(AUDIENCE_CLAIM, WINNER_CLAIM)]) as server:
        with_llm = settings.overridden(
            llm=f"openai:{MODEL}", llm_base_url=server.url, llm_api_key=SecretStr(KEY)
        )

        async def steps(s: Session) -> None:
            _, followup = await s.slash_ask(QUESTION)
            assert followup is not None
            fields = embed_of(followup)["fields"]
            assert [f["name"] for f in fields[:2]] == [
                "[1] Media Week · 2024-01-01",
                "[2] Sports Daily · 2024-01-03",
            ]
            assert "**a record television audience of 3.7 million**" in fields[0]["value"]
            assert fields[1]["value"].startswith(
                "[Humphries is world champion](https://example.com/2024/01/03/final)"
            )
            assert f"**{WINNER_CLAIM[2]}**" in fields[1]["value"]

        scenario(with_llm, fake_embedder, steps)

    (request,) = server.requests
    assert request.number_of("record television audience") > request.number_of("Humphries won")


# -- conversations --------------------------------------------------------------------------
FOLLOW_UP_US = "How much military aid has the United States sent to Ukraine?"
FOLLOW_UP_GERMANY = "How much military aid has Germany sent to Ukraine?"


def test_chat_has_the_model_rewrite_a_follow_up(
    env: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder
) -> None:
    """The rewrite asked of the real client: the conversation sent, its reply used."""
    assert CliRunner().invoke(app, ["index"]).exit_code == 0
    script = [error(500, "down"), Reply(completion(FOLLOW_UP_GERMANY)), error(500, "down")]

    with serving(script) as server:
        llm_env(monkeypatch, server.url, 10)
        result = CliRunner().invoke(
            app, ["chat", "--json"], input=f"{FOLLOW_UP_US}\nand the Germans?\n"
        )
        requests = list(server.requests)

    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert answers[1]["question"] == FOLLOW_UP_GERMANY
    assert answers[1]["follow_up"] == "and the Germans?"
    rewrite = requests[1].body["messages"]
    assert [m["role"] for m in rewrite] == ["system", "user", "assistant", "user"]
    assert rewrite[1]["content"] == FOLLOW_UP_US and rewrite[3]["content"] == "and the Germans?"
    assert rewrite[2]["content"] == answers[0]["answer"], answers[0]  # the answer given


def test_chat_exits_at_once_when_a_rewrite_drips_past_the_timeout(
    env: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder
) -> None:
    """The real program: a rewrite that never ends is replaced by the rule's, one log line,
    and `newsbot chat` ends when its input does, not when the model does."""
    assert CliRunner().invoke(app, ["index"]).exit_code == 0
    script = [error(500, "down"), Reply(completion(FOLLOW_UP_GERMANY), drip=DRIPPING)]
    script.append(error(500, "down"))

    with serving(script) as server:
        llm_env(monkeypatch, server.url, 1)
        result = subprocess.run(
            [sys.executable, str(NEWSBOT), "chat"],
            input=f"{FOLLOW_UP_US}\nand Germany?\n",
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "400", "PYTHONIOENCODING": "utf-8"},
            timeout=DRIPPING / 2,
        )

    assert result.returncode == 0, result.stderr
    assert f"({FOLLOW_UP_GERMANY})" in result.stdout  # rewritten by rule
    rewrites = [line for line in result.stderr.splitlines() if "follow-up" in line]
    assert len(rewrites) == 1 and "timed out" in rewrites[0]
    assert KEY not in result.stdout + result.stderr

"""The language-model answer against the OpenAI-compatible servers teams run, each replayed
by the fake server (tests/fake_openai.py, `SERVERS`: the status and body each sends for a
response format it does not take) through the real `ChatOpenAI` client.

newsbot asks with `json_schema`, then `json_object`, then the prompt alone, and remembers for
the process which one the server took; every request of an answer shares one deadline
(NEWSBOT_LLM_TIMEOUT). Each server is asked through `newsbot ask --json`, the real program in
a subprocess and the bot against the fake Discord.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from bot.render import MODEL_GAVE_NONE, WRITTEN_BY_MODEL
from index.answer.citations import LlmAnswer
from index.answer.types import MODE_EXTRACTIVE, MODE_LLM, MODEL_FAILED
from index.cli.app import app
from index.models.structured import PROCESS_MEMORY, json_in
from index.settings import Settings
from tests.fake_openai import (
    LLAMA_CPP_PYTHON_REJECTS_JSON_SCHEMA,
    MODEL,
    NO_FORMAT,
    SERVERS,
    Reply,
    answer_with,
    completion,
    error,
    serving,
)
from tests.fakes import FakeEmbedder
from tests.test_bot import Session, embed_of, scenario
from tests.test_llm_openai import (  # noqa: F401 (fixtures)
    ASKED_ON,
    AUDIENCE_CLAIM,
    KEY,
    MAX_TOKENS,
    NEWSBOT,
    QUESTION,
    WINNER_CLAIM,
    WON,
    ask_json,
    corpus,
    llm_env,
    no_provider_environment,
    warnings_logged,
)

ANSWER = f"{AUDIENCE_CLAIM[0]} [1] {WINNER_CLAIM[0]} [2]"
FIRST_SOURCE = "Record audience for the final"
SCHEMA, OBJECT = "json_schema", "json_object"


@dataclass(frozen=True)
class Case:
    """A server, and the response formats newsbot asks it with before one is taken."""

    server: str
    asked: tuple[str, ...]


CASES = {
    "llama-server": Case("llama-server", (SCHEMA,)),
    "llama-server-2024": Case("llama-server-2024", (SCHEMA, OBJECT)),
    "llama-cpp-python": Case("llama-cpp-python", (SCHEMA, OBJECT)),
    "ollama": Case("ollama", (SCHEMA,)),
    "ollama-2024": Case("ollama-2024", (SCHEMA,)),  # taken, ignored: JSON in prose, read
    "vllm": Case("vllm", (SCHEMA,)),
    "vllm-xgrammar": Case("vllm-xgrammar", (SCHEMA, OBJECT)),
    "no-response-format": Case("no-response-format", (SCHEMA, OBJECT, NO_FORMAT)),
}
cases = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    """Each test's servers are new to the process."""
    PROCESS_MEMORY.forget()
    yield
    PROCESS_MEMORY.forget()


def good_answer() -> Reply:
    return answer_with(AUDIENCE_CLAIM, WINNER_CLAIM)


def script(case: Case, questions: int = 1) -> list[Any]:
    """The server's replies to every request `questions` questions may make."""
    answering = SERVERS[case.server].answering(good_answer())
    return [answering] * (len(case.asked) * questions)


# -- the command line ------------------------------------------------------------------------
@cases
def test_each_server_gives_the_checked_answer_and_is_asked_its_way_from_then_on(
    case: Case, env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0

    with serving(script(case, questions=2)) as server:
        llm_env(monkeypatch, server.url, 10)
        first = ask_json(runner)
        second = ask_json(runner)  # the same process: the format taken is remembered
        requests = list(server.requests)

    for shown in (first, second):
        assert (shown["mode"], shown["answer"], shown["fallback"]) == (MODE_LLM, ANSWER, None)
        assert shown["citations"][0]["title"] == FIRST_SOURCE
    asked = [r.response_format for r in requests]
    assert asked == [*case.asked, case.asked[-1]]
    assert all(r.body["temperature"] == 0 for r in requests)  # NEWSBOT_LLM_TEMPERATURE
    # NEWSBOT_LLM_MAX_TOKENS both ways: llama-cpp-python and Ollama read only max_tokens.
    assert all(
        r.body["max_tokens"] == r.body["max_completion_tokens"] == MAX_TOKENS for r in requests
    )
    if OBJECT in case.asked or NO_FORMAT in case.asked:  # the schema told in the prompt
        described = next(r for r in requests if r.response_format != SCHEMA)
        assert '"not_covered"' in described.body["messages"][0]["content"]
    assert warnings_logged(caplog) == []


@cases
def test_ask_in_a_terminal_through_each_server(
    case: Case, env: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder
) -> None:
    """The real program, in a process of its own (nothing remembered from before)."""
    assert CliRunner().invoke(app, ["index"]).exit_code == 0

    with serving(script(case)) as server:
        llm_env(monkeypatch, server.url, 10)
        result = subprocess.run(
            [sys.executable, str(NEWSBOT), "ask", QUESTION, "--asked-on", ASKED_ON],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "400", "PYTHONIOENCODING": "utf-8"},
            timeout=60,
        )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{ANSWER}\n\n[1] {FIRST_SOURCE} — "), result.stdout
    assert result.stderr == ""
    assert [r.response_format for r in server.requests] == list(case.asked)


# -- Discord --------------------------------------------------------------------------------
@cases
def test_discord_through_each_server(
    case: Case, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    with serving(script(case)) as server:
        with_llm = settings.overridden(
            llm=f"openai:{MODEL}", llm_base_url=server.url, llm_api_key=SecretStr(KEY)
        )

        async def steps(s: Session) -> None:
            _, followup = await s.slash_ask(QUESTION)
            assert followup is not None
            embed = embed_of(followup)
            assert embed["description"] == ANSWER
            assert embed["fields"][0]["name"].startswith("[1] Media Week")
            assert embed["footer"]["text"].startswith(f"{WRITTEN_BY_MODEL}\nAnswered in ")

        scenario(with_llm, fake_embedder, steps)

    assert [r.response_format for r in server.requests] == list(case.asked)


# -- what is not a rejection, and the one deadline -------------------------------------------
def test_a_server_error_that_does_not_name_the_format_is_not_asked_again(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """llama-server's 500 for a prompt over its context: a failure, not a rejection."""
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0
    too_big = "Input prompt is too big compared to KV size. Please try increasing KV size."

    with serving([error(500, too_big), good_answer()]) as server:
        llm_env(monkeypatch, server.url, 10)
        shown = ask_json(runner)

    assert (shown["mode"], shown["fallback"]) == (MODE_EXTRACTIVE, MODEL_FAILED)
    assert shown["answer"] == f"{WON} [1]"
    assert len(server.requests) == 1
    (line,) = warnings_logged(caplog)
    assert "HTTP 500" in line and "KV size" not in line


# SmolLM2-135M-Instruct behind llama-server, held to the schema, listing passage numbers until
# NEWSBOT_LLM_MAX_TOKENS (docs/llm.md, "Servers and models tried"); openai's client raises
# LengthFinishReasonError on finish_reason "length" with a response_format.
RUNAWAY = '{"not_covered": false, "claims": [{"text": "Luke Humphries", "sources": [1, 2, 3, 4'


def test_a_reply_cut_off_at_the_token_cap_is_the_offline_answer_and_says_so(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0

    with serving([Reply(completion(RUNAWAY, finish_reason="length"))]) as server:
        llm_env(monkeypatch, server.url, 10)
        shown = ask_json(runner)

    assert (shown["mode"], shown["fallback"]) == (MODE_EXTRACTIVE, MODEL_FAILED)
    assert len(server.requests) == 1  # the server took the format: nothing to fall back to
    (line,) = warnings_logged(caplog)
    assert "cut off at NEWSBOT_LLM_MAX_TOKENS (LengthFinishReasonError)" in line


SLOW_REJECTION = 1.5  # seconds the first format's rejection takes
DEADLINE = 2.5  # NEWSBOT_LLM_TIMEOUT
HANGING = 30  # seconds the second format's reply would take


def slow_then_hanging() -> list[Any]:
    """llama-cpp-python rejecting json_schema slowly (a busy server), then json_object's
    reply far past the deadline: each within the client's per-request timeout."""
    slow = LLAMA_CPP_PYTHON_REJECTS_JSON_SCHEMA
    return [
        Reply(slow.body, slow.status, delay=SLOW_REJECTION),
        Reply(good_answer().body, delay=HANGING),
    ]


def test_one_deadline_covers_every_format_tried(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 29: a reply ran 219 s. Now NEWSBOT_LLM_TIMEOUT bounds the answer, not each
    request."""
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0

    with serving(slow_then_hanging()) as server:
        llm_env(monkeypatch, server.url, DEADLINE)
        started = time.perf_counter()
        shown = ask_json(runner)
        waited = time.perf_counter() - started
        asked = [r.response_format for r in server.requests]

    assert asked == [SCHEMA, OBJECT]
    assert waited < DEADLINE + 1.5  # not SLOW_REJECTION + DEADLINE, nor HANGING
    assert (shown["mode"], shown["answer"], shown["fallback"]) == (
        MODE_EXTRACTIVE,
        f"{WON} [1]",
        MODEL_FAILED,
    )
    (line,) = warnings_logged(caplog)
    assert f"timed out, no answer in {DEADLINE:g} s" in line


def test_one_deadline_in_discord_shows_the_offline_answer_with_its_note(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    with serving(slow_then_hanging()) as server:
        with_llm = settings.overridden(
            llm=f"openai:{MODEL}",
            llm_base_url=server.url,
            llm_api_key=SecretStr(KEY),
            llm_timeout=DEADLINE,
        )

        async def steps(s: Session) -> None:
            started = time.perf_counter()
            _, followup = await s.slash_ask(QUESTION)
            assert time.perf_counter() - started < DEADLINE + 1.5
            assert followup is not None
            embed = embed_of(followup)
            assert embed["description"].startswith("**Luke Humphries**")
            assert embed["footer"]["text"].startswith(f"{MODEL_GAVE_NONE}\nAnswered in ")
            assert AUDIENCE_CLAIM[0] not in json.dumps(embed)

        scenario(with_llm, fake_embedder, steps)

    assert len(server.requests) == 2


# -- temperature ----------------------------------------------------------------------------
@pytest.mark.parametrize(("setting", "sent"), [(None, 0), ("0.7", 0.7), ("", None)])
def test_the_temperature_sent_is_newsbot_llm_temperature(
    setting: str | None, sent: float | None, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["index"]).exit_code == 0
    if setting is not None:
        monkeypatch.setenv("NEWSBOT_LLM_TEMPERATURE", setting)

    with serving([good_answer()]) as server:
        llm_env(monkeypatch, server.url, 10)
        ask_json(runner)

    (request,) = server.requests
    assert request.body.get("temperature") == sent  # empty: not sent, the server's default


# -- reading a reply ------------------------------------------------------------------------
REPLY = {"not_covered": False, "claims": [{"text": "A b.", "sources": [1], "quote": "a b c"}]}
WRITTEN = json.dumps(REPLY)


@pytest.mark.parametrize(
    "text",
    [
        WRITTEN,
        f"```json\n{WRITTEN}\n```",
        f"```\n{WRITTEN}\n```",
        f"Here is the answer:\n```json\n{WRITTEN}\n```\nHope this helps.",
        f"Sure! {WRITTEN} That is all the passages say.",
        f"The passages {{as numbered}} say:\n```json\n{WRITTEN}\n```\nSee passage {{1}}.",
    ],
    ids=["json", "fenced", "fenced-untagged", "fenced-in-prose", "in-prose", "braces-around"],
)
def test_a_reply_is_read_alone_in_a_fence_or_in_prose(text: str) -> None:
    assert LlmAnswer.model_validate(json_in(text)) == LlmAnswer.model_validate(REPLY)


@pytest.mark.parametrize(
    "text", ["Luke Humphries won.", WRITTEN[:-20], "{not json}"], ids=["prose", "cut", "braces"]
)
def test_a_reply_without_json_is_refused(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json_in(text)

"""`newsbot eval` of the language-model answer: claims made and verified, the fallback rate
by reason, latency; a scripted fake chat model stands for the provider."""

from __future__ import annotations

import json
import re
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field
from typer.testing import CliRunner

from index.answer.types import (
    MODE_EXTRACTIVE,
    MODE_LLM,
    MODEL_FAILED,
    NO_PASSAGES,
    NOT_COVERED,
    NOTHING_VERIFIED,
    Answer,
)
from index.cli.app import app
from index.evaluation.report import EvalQuestion, EvalReport, score
from tests.fakes import FakeEmbedder

runner = CliRunner()

# The figures `newsbot eval` prints without the language model: the extractive mode's,
# exactly (with the reply kinds of issue 28).
EXTRACTIVE_FIGURES = [
    "strict_hit@1",
    "strict_hit@3",
    "strict_hit@5",
    "strict_hit@10",
    "loose_hit@5",
    "answer_accuracy",
    "not_covered",
    "hedged",
    "outright",
    "right",
    "useful",
    "confidently_wrong",
    "sources_holding_answer",
    "uncovered_not_covered",
    "uncovered_hedged",
    "uncovered_outright",
    "wrong_answers",
    "latency_p50_ms",
    "latency_p95_ms",
]
LLM_FIGURES = [
    "claims_made",
    "claims_verified",
    "claims_dropped_by_quote",
    "claims_dropped_by_claim",
    "fallback",
    "fallback_model_failed",
    "fallback_nothing_verified",
    "fallback_no_passages",
    "fallback_said_not_covered",
    "fallback_no_claims",
]
TIMEOUT = 0.3
TOP_K = 3  # NEWSBOT_TOP_K: the passages the model is shown
ARTICLES = [
    ("aid", "The United States has sent $56.2 billion in military aid to Ukraine."),
    ("marathon", "Ruth Chepngetich won the Chicago Marathon in record time on Sunday."),
    ("darts", "Luke Humphries won the darts world championship final against Luke Littler."),
    ("comet", "A comet was seen over Lisbon on Friday night by thousands of people."),
    ("ghana", "Voters in Ghana elected John Mahama as president in December."),
]

Passages = dict[int, str]  # the passages the model was shown, by number


def number_of(passages: Passages, words: str) -> int:
    return next(n for n, text in passages.items() if words in text)


def reply(*claims: tuple[str, int, str], not_covered: bool = False) -> str:
    return json.dumps(
        {
            "not_covered": not_covered,
            "claims": [{"text": t, "sources": [n], "quote": q} for t, n, q in claims],
        }
    )


def verified(p: Passages) -> str:
    """Two claims, both quoting the passage they cite."""
    aid = number_of(p, "$56.2 billion")
    return reply(
        ("The US has sent $56.2 billion.", aid, "sent $56.2 billion in military aid"),
        ("The aid is military.", aid, "military aid to Ukraine"),
    )


def half_verified(p: Passages) -> str:
    """Two claims; the second's quote is in its passage, but not the name it states."""
    darts = number_of(p, "darts")
    return reply(
        ("Luke Humphries won.", darts, "Luke Humphries won the darts"),
        ("Michael Smith won.", darts, "Luke Humphries won the darts"),
    )


def unverifiable(p: Passages) -> str:
    """Two claims: a quote not in its passage, and a passage that does not exist."""
    comet = number_of(p, "comet")
    return reply(
        ("It was seen over Porto.", comet, "seen over Porto on Friday"),
        ("Thousands saw it.", 99, "by thousands of people"),
    )


def quote_too_short(p: Passages) -> str:
    """One claim whose quote is a single word."""
    return reply(("Mahama was elected.", number_of(p, "Ghana"), "Mahama"))


def malformed(p: Passages) -> str:
    return "Ruth Chepngetich won the Chicago Marathon."  # not JSON


def failing(p: Passages) -> str:
    raise ConnectionError("the server went away")


def too_slow(p: Passages) -> str:
    time.sleep(TIMEOUT + 1.0)
    return verified(p)


def not_covered(p: Passages) -> str:
    return reply(not_covered=True)


# Each question with its gold article and the model's reply to it.
COVERED: list[tuple[str, str, str, Callable[[Passages], str]]] = [
    ("How much military aid has the United States sent?", "$56.2 billion", "aid", verified),
    ("Who won the darts world championship final?", "Luke Humphries", "darts", half_verified),
    ("Where was the comet seen on Friday?", "Lisbon", "comet", unverifiable),
    ("Who did voters in Ghana elect as president?", "John Mahama", "ghana", quote_too_short),
    ("Who won the Chicago Marathon?", "Ruth Chepngetich", "marathon", malformed),
    ("When did Ruth Chepngetich win the Chicago Marathon?", "Sunday", "marathon", failing),
    ("How many people saw the comet over Lisbon?", "thousands", "comet", too_slow),
]
UNCOVERED = [("Which team won the basketball championship?", "Lakers", not_covered)]
SCRIPT = {q: r for q, _, _, r in COVERED} | {q: r for q, _, r in UNCOVERED}


class Scripted(BaseChatModel):
    """Replies to each question as `SCRIPT` says, from the numbered passages it was sent."""

    asked: list[str] = Field(default_factory=list)
    shown: list[int] = Field(default_factory=list)  # passages in each prompt

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt = str(messages[-1].content)
        question = re.search(r"Asked on \S+: (.*)$", prompt)
        assert question is not None
        self.asked.append(question[1])
        passages = {
            int(n): text
            for n, text in re.findall(r'^<passage n="(\d+)".*>\n(.*)$', prompt, re.MULTILINE)
        }
        self.shown.append(len(passages))
        text = SCRIPT[question[1]](passages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Scripted:
    """The model `init_chat_model` gives for any `NEWSBOT_LLM` (a stand-in `langchain`)."""
    scripted = Scripted()
    chat_models = types.ModuleType("langchain.chat_models")
    chat_models.init_chat_model = lambda name, **kwargs: scripted  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain", types.ModuleType("langchain"))
    monkeypatch.setitem(sys.modules, "langchain.chat_models", chat_models)
    return scripted


@pytest.fixture
def eval_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder) -> Path:
    """Articles, covered and uncovered questions under tmp_path; the index in tmp_path/idx."""
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(tmp_path / "idx"))
    monkeypatch.setenv("NEWSBOT_LLM_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("NEWSBOT_TOP_K", str(TOP_K))
    write_jsonl(
        tmp_path / "articles.jsonl",
        [{"id": i, "title": i.title(), "text": text} for i, text in ARTICLES],
    )
    write_jsonl(
        tmp_path / "questions.jsonl",
        [{"question": q, "answers": [a], "gold_article_ids": [gold]} for q, a, gold, _ in COVERED],
    )
    write_jsonl(
        tmp_path / "uncovered.jsonl", [{"question": q, "answers": [a]} for q, a, _ in UNCOVERED]
    )
    return tmp_path


def write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def run_eval(where: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    """`newsbot eval` of the set: its output and its --json."""
    result = runner.invoke(
        app,
        [
            "eval",
            "--questions", str(where / "questions.jsonl"),
            "--uncovered", str(where / "uncovered.jsonl"),
            "--articles", str(where / "articles.jsonl"),
            "--index-dir", str(where / "idx"),
            "--json", str(where / "eval.json"),
            *extra,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout, json.loads((where / "eval.json").read_text())


def test_newsbot_llm_set_evaluates_the_models_answers_with_their_own_figures(
    eval_set: Path, model: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_LLM", "openai:scripted")

    shown, data = run_eval(eval_set)

    assert sorted(model.asked) == sorted(SCRIPT)  # every question, covered or not, once
    assert set(model.shown) == {TOP_K}  # as in `newsbot ask`, not the 10 hit@10 needs
    figures = data["figures"]
    # Each answer ranks the TOP_K passages the model saw: hit@5 and hit@10 are not measured.
    ranked = ["strict_hit@1", "strict_hit@3"]
    assert (
        list(figures) == ranked + EXTRACTIVE_FIGURES[5:-2] + LLM_FIGURES + EXTRACTIVE_FIGURES[-2:]
    )
    # Claims: verified 2 of 2, half-verified 1 of 2, unverifiable 0 of 2, too short 0 of 1.
    assert figures["claims_made"] == 7
    assert figures["claims_verified"] == pytest.approx(3 / 7)
    # Of the 8 questions asked, 6 were given the offline answer: the malformed, the failing
    # and the slow reply; the two with nothing verified; and the uncovered one, which the
    # model said "not covered" to while the offline answer step answered it outright (a
    # model's "not covered" never replaces an outright answer: here that costs a right one).
    assert figures["fallback"] == pytest.approx(6 / 8)
    assert figures["fallback_model_failed"] == pytest.approx(3 / 8)
    assert figures["fallback_nothing_verified"] == pytest.approx(2 / 8)
    assert figures["fallback_no_passages"] == 0.0
    assert figures["fallback_said_not_covered"] == pytest.approx(1 / 8)
    assert figures["fallback_no_claims"] == 0.0
    assert figures["uncovered_not_covered"] == 0.0
    # Of the 7 claims, 3 were dropped by the quote check and 1 by the claim check.
    assert figures["claims_dropped_by_quote"] == pytest.approx(3 / 7)
    assert figures["claims_dropped_by_claim"] == pytest.approx(1 / 7)
    results = {r["question"]: r for r in [*data["results"], *data["uncovered_results"]]}
    assert {q: (r["mode"], r["claims"], r["dropped_claims"]) for q, r in results.items()} == {
        COVERED[0][0]: (MODE_LLM, 2, 0),
        COVERED[1][0]: (MODE_LLM, 2, 1),
        COVERED[2][0]: (MODE_EXTRACTIVE, 2, 2),
        COVERED[3][0]: (MODE_EXTRACTIVE, 1, 1),
        COVERED[4][0]: (MODE_EXTRACTIVE, 0, 0),
        COVERED[5][0]: (MODE_EXTRACTIVE, 0, 0),
        COVERED[6][0]: (MODE_EXTRACTIVE, 0, 0),
        UNCOVERED[0][0]: (MODE_EXTRACTIVE, 0, 0),
    }
    assert results[COVERED[1][0]]["answer"] == "Luke Humphries won. [1]"
    assert results[COVERED[1][0]]["ungrounded_claims"] == 1
    # Latency is the whole answer's: the slow reply was waited for up to the timeout.
    assert results[COVERED[6][0]]["latency_ms"] >= TIMEOUT * 1000
    assert (
        figures["latency_p50_ms"] < TIMEOUT * 1000 <= max(r["latency_ms"] for r in results.values())
    )
    assert data["mode"] == MODE_LLM
    assert "answered by openai:scripted" in shown
    for row in ("claims made", "claims verified", "fallback model failed"):
        assert row in shown
    assert re.search(r"claims made\s*│\s*7 │", shown)
    assert re.search(r"claims verified\s*│\s*0\.429 │", shown)
    assert re.search(r"fallback\s*│\s*0\.750 │", shown)
    assert re.search(r"claims dropped by quote\s*│\s*0\.429 │", shown)
    assert re.search(r"claims dropped by claim\s*│\s*0\.143 │", shown)


def test_the_offline_fallback_in_llm_mode_gets_the_set_weights(
    eval_set: Path, model: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_LLM", "openai:scripted")

    _, plain = run_eval(eval_set)
    _, weighted = run_eval(eval_set, "--set", "answer_above=1.01", "--set", "hedge_above=1.01")

    def fell_back(data: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in data["results"] if r["fallback"] is not None]

    # The marathon's offline answer is an answer with the set's weights, "not covered" with
    # answer_above and hedge_above out of reach.
    assert any(r["found"] or r["hedged"] for r in fell_back(plain))
    assert all(r["answer"] == NOT_COVERED for r in fell_back(weighted))
    assert [r["answer"] for r in weighted["results"] if r["mode"] == MODE_LLM] == [
        r["answer"] for r in plain["results"] if r["mode"] == MODE_LLM
    ]


def test_mode_extractive_asks_no_model_and_prints_the_figures_as_before(
    eval_set: Path, model: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_LLM", "openai:scripted")

    shown, data = run_eval(eval_set, "--mode", "extractive")

    assert model.asked == []
    assert list(data["figures"]) == EXTRACTIVE_FIGURES
    assert data["mode"] == MODE_EXTRACTIVE
    assert {r["mode"] for r in data["results"]} == {MODE_EXTRACTIVE}
    assert {(r["claims"], r["fallback"]) for r in data["results"]} == {(0, None)}
    assert not any("ungrounded_claims" in r for r in data["results"])  # as before issue 29
    assert "answered by" not in shown and "claims" not in shown


def test_without_newsbot_llm_the_eval_is_extractive_and_mode_llm_one_line(
    eval_set: Path, model: Scripted
) -> None:
    _, data = run_eval(eval_set)

    assert model.asked == [] and list(data["figures"]) == EXTRACTIVE_FIGURES

    result = runner.invoke(
        app, ["eval", "--questions", str(eval_set / "questions.jsonl"), "--mode", "llm"]
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "error: --mode llm needs NEWSBOT_LLM, the model to ask (e.g. openai:gpt-4o-mini)\n"
    )


def test_a_missing_provider_package_stops_the_eval_before_indexing(
    eval_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "langchain", None)  # not installed
    monkeypatch.setenv("NEWSBOT_LLM", "ollama:llama3.1")

    result = runner.invoke(
        app,
        ["eval", "--questions", str(eval_set / "questions.jsonl"),
         "--articles", str(eval_set / "articles.jsonl"), "--index-dir", str(eval_set / "idx")],
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.stderr == (
        "error: NEWSBOT_LLM is set but its provider package is missing: "
        "pip install 'newsbot[ollama]'\n"
    )
    assert not (eval_set / "idx").exists()


def answered(
    mode: str,
    claims: int = 0,
    dropped: int = 0,
    fallback: str | None = None,
    ungrounded: int = 0,
) -> Answer:
    return Answer(
        "?",
        False,
        NOT_COVERED,
        mode=mode,
        claims=claims,
        dropped_claims=dropped,
        fallback=fallback,
        ungrounded_claims=ungrounded,
    )


def test_llm_figures_count_every_question_asked_by_reason() -> None:
    question = EvalQuestion("q", "?", ("x",))
    report = EvalReport(
        [
            score(question, answered(MODE_LLM, claims=4, dropped=1, ungrounded=1)),
            score(question, answered(MODE_EXTRACTIVE, fallback=NO_PASSAGES)),
            score(question, answered(MODE_EXTRACTIVE, 2, 2, NOTHING_VERIFIED, ungrounded=1)),
            score(question, answered(MODE_EXTRACTIVE, fallback=MODEL_FAILED)),
        ],
        [score(question, answered(MODE_LLM))],  # the model said "not covered"
        MODE_LLM,
    )

    figures = report.figures()

    assert figures["claims_made"] == 6
    assert figures["claims_verified"] == pytest.approx(3 / 6)
    assert figures["claims_dropped_by_quote"] == pytest.approx(1 / 6)
    assert figures["claims_dropped_by_claim"] == pytest.approx(2 / 6)
    assert figures["fallback"] == pytest.approx(3 / 5)
    for reason in ("model_failed", "nothing_verified", "no_passages"):
        assert figures[f"fallback_{reason}"] == pytest.approx(1 / 5)
    assert "fallback_not_covered" not in figures
    assert report.to_dict()["mode"] == MODE_LLM


def test_no_claims_made_is_a_verified_share_of_zero_not_an_error() -> None:
    question = EvalQuestion("q", "?", ("x",))
    report = EvalReport(
        [score(question, answered(MODE_EXTRACTIVE, fallback=MODEL_FAILED))], [], MODE_LLM
    )

    assert (report.figures()["claims_made"], report.figures()["claims_verified"]) == (0, 0.0)

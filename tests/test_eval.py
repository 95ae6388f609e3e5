"""`newsbot eval` and `ask --batch`: metrics checked by hand on tiny sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.answer.types import HEDGE, NOT_COVERED, Answer, Citation
from index.cli.app import app
from index.errors import NewsbotError
from index.evaluation.report import EvalQuestion, EvalReport, answer_pattern, read_questions, score
from index.store.layout import IndexLayout
from tests.fakes import FakeEmbedder

runner = CliRunner()


def cite(n: int, article_id: str, passage: str) -> Citation:
    return Citation(n, article_id, f"title {article_id}", None, None, None, passage)


def question(answers: tuple[str, ...], gold: set[str]) -> EvalQuestion:
    return EvalQuestion("q", "?", answers, frozenset(gold))


def test_answer_strings_match_case_insensitively_on_word_boundaries() -> None:
    pattern = answer_pattern(["Ruth", "$56.2 billion"])
    assert pattern is not None
    assert pattern.search("ruth Chepngetich won")
    assert not pattern.search("the truth is")
    assert pattern.search("sent $56.2 billion.")
    assert not pattern.search("sent $56.2 billions")
    assert answer_pattern(["  "]) is None


def test_hand_checked_metrics_over_four_questions() -> None:
    aid = "The US has sent $56.2 billion in aid."
    other = "A marathon was run in Chicago."
    scored = [
        # 1. Gold article at rank 2 contains the answer; the answer text has it too.
        score(
            question(("$56.2 billion",), {"aid"}),
            Answer(
                "?",
                True,
                "The US has sent $56.2 billion in aid. [2]",
                [
                    cite(1, "run", other),
                    cite(2, "aid", aid),
                ],
            ),
        ),
        # 2. The answer string is only in a non-gold article, at rank 1.
        score(
            question(("$56.2 billion",), {"gold"}),
            Answer("?", True, "A marathon was run in Chicago. [1]", [cite(1, "copy", aid)]),
        ),
        # 3. Not covered: nothing cited, nothing right.
        score(question(("Lakers",), {"nba"}), Answer("?", False, "not covered")),
        # 4. Strict hit at rank 1, but the answer sentence shown lacks the answer.
        score(
            question(("Chicago",), {"run"}),
            Answer("?", True, "A marathon happened. [1]", [cite(1, "run", other)]),
        ),
    ]
    assert [(s.strict_rank, s.loose_rank, s.answer_correct) for s in scored] == [
        (2, 2, True),
        (None, 1, False),
        (None, None, False),
        (1, 1, False),
    ]
    report = EvalReport(scored)
    figures = report.figures()
    assert figures["strict_hit@1"] == 0.25  # question 4
    assert figures["strict_hit@3"] == 0.5  # questions 1 and 4
    assert figures["strict_hit@10"] == 0.5
    assert figures["loose_hit@5"] == 0.75  # questions 1, 2, 4
    assert figures["answer_accuracy"] == 0.25  # question 1
    assert figures["not_covered"] == 0.25  # question 3
    # Shown sources: 2 + 1 + 0 + 1; those holding an answer string: aid (1), copy (2), run (4).
    assert [(s.shown_sources, s.sources_holding) for s in scored] == [
        (2, 1),
        (1, 1),
        (0, 0),
        (1, 1),
    ]
    assert figures["sources_holding_answer"] == 0.75
    assert figures["wrong_answers"] == 0.5  # questions 2 and 4: answered, without the answer
    assert "uncovered_not_covered" not in figures
    # Misses first (2 and 3), then the late hit (1); the rank-1 hit is no miss.
    assert [s.question.answers for s in report.worst_misses()] == [
        ("$56.2 billion",),
        ("Lakers",),
        ("$56.2 billion",),
    ]


def test_uncovered_questions_count_not_covered_as_right_and_any_answer_as_wrong() -> None:
    covered = score(
        question(("$56.2 billion",), {"aid"}),
        Answer("?", True, "It sent $56.2 billion. [1]", [cite(1, "aid", "It sent $56.2 billion.")]),
    )
    guessed = score(
        question(("Lakers",), {"nba"}),
        Answer("?", True, "The Bulls won. [1]", [cite(1, "b", "The Bulls won.")]),
    )
    admitted = score(question(("Celtics",), {"nba"}), Answer("?", False, "not covered"))
    report = EvalReport([covered], [guessed, admitted])
    figures = report.figures()
    assert figures["uncovered_not_covered"] == 0.5  # admitted
    assert figures["not_covered"] == 0.0  # the covered question was answered
    assert figures["wrong_answers"] == pytest.approx(1 / 3)  # guessed, of three questions
    assert figures["answer_accuracy"] == 1.0  # over the covered questions only
    assert report.to_dict()["uncovered_questions"] == 2


def test_each_reply_kind_apart_over_covered_and_uncovered_questions() -> None:
    won = "Ruth Chepngetich won the Chicago Marathon."
    cheered = "Fans cheered along the route."
    source = cite(1, "a", won)
    asked = question(("Ruth Chepngetich",), {"a"})
    replies = {
        "right": Answer("?", True, f"{won} [1]", [source]),
        "wrong": Answer("?", True, f"{cheered} [1]", [source]),
        "useful hedge": Answer("?", False, f"{HEDGE}“{won}” [1]", [source]),
        "useless hedge": Answer("?", False, f"{HEDGE}“{cheered}” [1]", [source]),
        "not covered": Answer("?", False, NOT_COVERED),
    }
    unanswerable = question(("Hellen Obiri",), set())
    uncovered = [
        Answer("?", True, f"{won} [1]", [source]),  # a confident guess
        Answer("?", False, f"{HEDGE}“{won}” [1]", [source]),
        Answer("?", False, NOT_COVERED),
        Answer("?", False, NOT_COVERED),
    ]

    report = EvalReport(
        [score(asked, a) for a in replies.values()], [score(unanswerable, a) for a in uncovered]
    )

    figures = report.figures()
    kinds = [figures[k] for k in ("outright", "hedged", "not_covered")]
    assert kinds == [pytest.approx(2 / 5), pytest.approx(2 / 5), pytest.approx(1 / 5)]
    assert sum(kinds) == pytest.approx(1.0)
    assert figures["right"] == pytest.approx(1 / 5)  # the right answer, not the useful hedge
    assert figures["useful"] == pytest.approx(2 / 5)  # the right answer and the useful hedge
    assert figures["confidently_wrong"] == pytest.approx(1 / 5)  # not the useless hedge
    assert figures["answer_accuracy"] == figures["useful"]
    assert figures["uncovered_not_covered"] == 0.5
    assert figures["uncovered_hedged"] == 0.25
    assert figures["uncovered_outright"] == 0.25
    assert figures["wrong_answers"] == pytest.approx(2 / 9)  # the wrong one and the guess


def test_only_the_sources_a_user_is_shown_count() -> None:
    passages = [cite(n, f"a{n}", "Nothing here.") for n in range(1, 6)]
    passages.append(cite(6, "a6", "It sent $56.2 billion."))
    scored = score(question(("$56.2 billion",), {"a6"}), Answer("?", True, "x", passages), shown=5)
    assert (scored.shown_sources, scored.sources_holding, scored.loose_rank) == (5, 0, 6)


def test_read_questions_rejects_bad_lines_with_their_place(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Who?", "answers": ["A"]}\n{"question": "x", "answers": "A"}\n')
    with pytest.raises(NewsbotError, match=r"q.jsonl:2: 'answers' must be a list"):
        read_questions(path)


GOOD_LINE = b'{"question": "Who?", "answers": ["A"]}\n'


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"question": "Who?", "answers": ["\xe9"]}', r"q.jsonl:2: not UTF-8 \(byte 0xe9\)"),
        (b"[" * 100_000 + b"]" * 100_000, r"q.jsonl:2: not JSON \(nested too deeply\)"),
        (b'{"question": "Who?", "answers": [], "x": ' + b"9" * 5000 + b"}", r"q.jsonl:2: not JSON"),
        (b'{"question": ["Who?"], "answers": ["A"]}', r"q.jsonl:2: expected an object"),
        (b'{"question": "Who?", "answers": ["A"], "date": {"y": 1}}', r"q.jsonl:2: 'date' must"),
        (b'{"question": "Who?", "answers": ["A"], "date": "2024-02-30"}', r"q.jsonl:2: 'date'"),
        (b'{"question": "Who?", "answers": ["A"], "gold_article_ids": 7}', r"'gold_article_ids'"),
        (b'{"question": "Who?", "answers": ["A"], "gold_article_ids": [{}]}', r"'gold_article"),
        (b'{"question": "Who?", "answers": ["A"], "id": ["a"]}', r"q.jsonl:2: 'id' must"),
        (b'{"question": "Who?", "answers": ["A"], "article_id": ["a"]}', r"2: 'article_id' must"),
    ],
    ids=[
        "not-utf8",
        "deep",
        "long-int",
        "list-question",
        "dict-date",
        "no-such-day",
        "ids-int",
        "ids-dict",
        "list-id",
        "list-article-id",
    ],
)
def test_a_hostile_questions_file_is_one_line_naming_the_place(
    tmp_path: Path, line: bytes, reason: str
) -> None:
    path = tmp_path / "q.jsonl"
    path.write_bytes(GOOD_LINE + line + b"\n")
    with pytest.raises(NewsbotError, match=reason) as refused:
        read_questions(path)
    assert "\n" not in str(refused.value)


def test_read_questions_takes_the_eval_sets_dates(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Who?", "answers": ["A"], "date": "2024/01/05"}\n')
    assert read_questions(path)[0].date == "2024-01-05"

    path.write_text('{"question": "Who?", "answers": ["A"], "date": "soon"}\n')
    with pytest.raises(NewsbotError, match=r"q.jsonl:1: 'date' must be a date"):
        read_questions(path)


NATURAL_COVERED: dict[str, object] = {
    "id": "n-1",
    "question": "who won the chicago marathon?",
    "answers": ["Ruth Chepngetich"],
    "article_id": "sport/marathon.md",
    "evidence": "Ruth Chepngetich won the Chicago Marathon.",
    "kind": "who",
}
NATURAL_UNCOVERED: dict[str, object] = {
    "id": "u-1",
    "question": "who won the boston marathon?",
    "why_uncovered": ".",
}


def test_read_questions_takes_the_natural_questions_format(tmp_path: Path) -> None:
    covered = write_jsonl(tmp_path / "covered.jsonl", [NATURAL_COVERED])
    uncovered = write_jsonl(tmp_path / "uncovered.jsonl", [NATURAL_UNCOVERED])

    (asked,) = read_questions(covered)
    (unanswerable,) = read_questions(uncovered, need_answers=False)

    assert asked == EvalQuestion(
        "n-1",
        "who won the chicago marathon?",
        ("Ruth Chepngetich",),
        frozenset({"sport/marathon.md"}),
    )
    assert (unanswerable.id, unanswerable.answers, unanswerable.date) == ("u-1", (), None)
    # A covered question still needs its answers.
    with pytest.raises(NewsbotError, match=r"uncovered.jsonl:1: 'answers' must be a list"):
        read_questions(uncovered)


def test_eval_asks_natural_questions_undated_uncovered_ones_without_answers(cli_env: Path) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    questions = write_jsonl(cli_env / "covered.jsonl", [NATURAL_COVERED])
    uncovered = write_jsonl(cli_env / "uncovered.jsonl", [NATURAL_UNCOVERED])
    out = cli_env / "eval.json"

    result = runner.invoke(
        app,
        ["eval", "--questions", str(questions), "--uncovered", str(uncovered), "--json", str(out)],
    )

    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["figures"]["strict_hit@1"] == 1.0  # its article_id is its gold article
    assert [(r["id"], r["answers"]) for r in data["uncovered_results"]] == [("u-1", [])]


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, corpus: Path, fake_embedder: FakeEmbedder
) -> Path:
    monkeypatch.setenv("NEWSBOT_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(tmp_path / "idx"))
    return tmp_path


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_eval_indexes_the_articles_asks_and_scores(cli_env: Path, corpus: Path) -> None:
    articles = write_jsonl(
        cli_env / "articles.jsonl",
        [
            {"id": "a1", "url": "https://news.example/a1", "title": "Aid",
             "text": "The United States has sent $56.2 billion in military aid to Ukraine."},
            {"id": "a2", "url": "https://news.example/a2", "title": "Marathon",
             "text": "Ruth Chepngetich won the Chicago Marathon in record time."},
        ],
    )  # fmt: skip
    questions = write_jsonl(
        cli_env / "questions.jsonl",
        [
            {"id": "1", "question": "How much military aid has the United States sent to Ukraine?",
             "answers": ["$56.2 billion"], "gold_article_ids": ["a1"], "date": "2024-12-01"},
            {"id": "2", "question": "Who won the Chicago Marathon?",
             "answers": ["Ruth Chepngetich"], "gold_article_ids": ["a2"]},
            {"id": "3", "question": "Which team won the basketball championship final?",
             "answers": ["Lakers"], "gold_article_ids": ["a9"]},
        ],
    )  # fmt: skip
    out = cli_env / "eval.json"

    result = runner.invoke(
        app,
        ["eval", "--questions", str(questions), "--articles", str(articles), "--json", str(out)],
    )

    assert result.exit_code == 0, result.output
    assert "strict hit@1" in result.stdout and "Worst misses" in result.stdout
    assert IndexLayout(cli_env / ".newsbot-eval").exists()  # not the main index
    data = json.loads(out.read_text())
    ranks = {r["id"]: (r["strict_rank"], r["answer_correct"]) for r in data["results"]}
    assert ranks == {"1": (1, True), "2": (1, True), "3": (None, False)}
    figures = data["figures"]
    assert figures["strict_hit@1"] == pytest.approx(2 / 3)
    assert figures["answer_accuracy"] == pytest.approx(2 / 3)
    assert figures["not_covered"] == pytest.approx(1 / 3)
    # A second run reuses the index: nothing is embedded again.
    again = runner.invoke(app, ["eval", "--questions", str(questions), "--articles", str(articles)])
    assert again.exit_code == 0 and "0 embedded now" in again.stdout
    # An ablation is a flag: demanding full support leaves every question not covered.
    strict = runner.invoke(
        app,
        ["eval", "--questions", str(questions), "--articles", str(articles), "--json", str(out),
         "--set", "answer_above=1.01", "--set", "hedge_above=1.01", "--set", "lead_weight=0"],
    )  # fmt: skip
    assert strict.exit_code == 0, strict.output
    assert (
        "weights changed for this run: answer_above=1.01, hedge_above=1.01, lead_weight=0"
        in strict.stdout
    )
    assert json.loads(out.read_text())["figures"]["not_covered"] == 1.0


def test_eval_asks_uncovered_questions_too(cli_env: Path) -> None:
    """Questions no indexed article answers: the ones answered anyway are wrong answers."""
    assert runner.invoke(app, ["index"]).exit_code == 0
    questions = write_jsonl(
        cli_env / "questions.jsonl",
        [{"question": "Who won the Chicago Marathon?", "answers": ["Ruth Chepngetich"],
          "gold_article_ids": ["sport/marathon.md"]}],
    )  # fmt: skip
    uncovered = write_jsonl(
        cli_env / "uncovered.jsonl",
        [{"question": "Which team won the basketball championship final?", "answers": ["Lakers"]},
         {"question": "Who won the Boston Marathon?", "answers": ["Hellen Obiri"]}],
    )  # fmt: skip
    out = cli_env / "eval.json"

    result = runner.invoke(
        app,
        ["eval", "--questions", str(questions), "--uncovered", str(uncovered), "--json", str(out)],
    )

    assert result.exit_code == 0, result.output
    assert "2 uncovered from uncovered.jsonl" in result.stdout
    data = json.loads(out.read_text())
    found = [r["found"] for r in data["uncovered_results"]]
    assert len(found) == 2
    figures = data["figures"]
    assert figures["uncovered_not_covered"] == found.count(False) / 2
    assert figures["wrong_answers"] == pytest.approx(found.count(True) / 3)
    assert figures["answer_accuracy"] == 1.0
    kinds = ("outright", "hedged", "not_covered")
    assert sum(figures[k] for k in kinds) == pytest.approx(1.0)
    assert figures["uncovered_outright"] == found.count(True) / 2
    for shown in ("outright", "right", "useful", "confidently wrong", "uncovered outright"):
        assert f"│ {shown} " in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [("lead=0", "no weight 'lead'; known: agreement_weight"), ("rrf_k=x", "wants a number")],
)
def test_eval_set_refuses_unknown_weights_in_one_line(
    cli_env: Path, change: str, message: str
) -> None:
    questions = write_jsonl(cli_env / "q.jsonl", [{"question": "Who?", "answers": ["x"]}])
    result = runner.invoke(app, ["eval", "--questions", str(questions), "--set", change])
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_ask_batch_prints_one_json_object_a_line(cli_env: Path) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    batch = write_jsonl(
        cli_env / "batch.jsonl",
        [
            {"question": "How much military aid has the United States sent to Ukraine?"},
            {"question": "How much military aid has the United States sent to Ukraine?",
             "date": "2024-01-01"},
        ],
    )  # fmt: skip

    result = runner.invoke(app, ["ask", "--batch", str(batch), "--json"])

    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert "$56.2 billion" in first["answer"]
    # Asked on 2024-01-01: the aid article (dated 2024-11-17 by its URL) did not exist yet.
    assert "aid.md" not in {c["article_id"] for c in second["citations"]}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"question": ""}\n', "batch.jsonl:1: expected an object with a non-empty 'question'"),
        ('{"question": "ok"}\nnope\n', "batch.jsonl:2: not JSON"),
        ('{"question": "ok", "date": "someday"}\n', "wants a date such as 2024-11-17"),
    ],
)
def test_bad_batch_lines_are_one_clear_line(cli_env: Path, lines: str, message: str) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0
    (cli_env / "batch.jsonl").write_text(lines)

    result = runner.invoke(app, ["ask", "--batch", str(cli_env / "batch.jsonl")])

    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_ask_needs_a_question_or_a_batch(cli_env: Path) -> None:
    result = runner.invoke(app, ["ask"])
    assert result.exit_code == 1 and "give one question, or --batch" in result.stderr


def test_a_single_file_of_articles_is_a_corpus(cli_env: Path) -> None:
    articles = write_jsonl(
        cli_env / "one.jsonl",
        [{"id": "x1", "title": "Comet", "text": "A comet was seen over Lisbon on Friday."}],
    )
    result = runner.invoke(app, ["index", "--corpus", str(articles)])
    assert result.exit_code == 0, result.output
    answer = json.loads(runner.invoke(app, ["ask", "Where was the comet seen?", "--json"]).stdout)
    assert answer["citations"][0]["article_id"] == "x1"


def test_a_hedge_is_neither_an_answer_nor_not_covered() -> None:
    question = EvalQuestion("1", "Who won?", ("Ruth Chepngetich",), frozenset({"a"}))
    passage = "Ruth Chepngetich won the Chicago Marathon."
    closest = Citation(1, "a", "Marathon", None, None, None, passage, (0, 41), "closest")
    hedge = Answer("Who won?", False, f"{HEDGE}“{passage}” [1]", [closest])
    wrong_hedge = Answer("Who won?", False, f"{HEDGE}“Fans cheered.” [1]", [closest])
    nothing = Answer("Who won?", False, NOT_COVERED)

    report = EvalReport(
        [score(question, a) for a in (hedge, wrong_hedge, nothing)],
        [score(question, hedge)],
    )

    figures = report.figures()
    assert figures["answer_accuracy"] == pytest.approx(1 / 3)  # the hedge quoting it
    assert figures["hedged"] == pytest.approx(2 / 3)
    assert figures["not_covered"] == pytest.approx(1 / 3)
    assert figures["uncovered_not_covered"] == 0.0
    assert figures["uncovered_hedged"] == 1.0
    assert figures["wrong_answers"] == 0.0  # a hedge claims no answer


def test_hit_at_k_counts_the_passages_ranked_not_only_those_shown() -> None:
    question = EvalQuestion("1", "Who won?", ("Ruth Chepngetich",), frozenset({"gold"}))
    shown = Citation(1, "other", "Fans", None, None, None, "Fans cheered.", None, "support")
    gold = Citation(2, "gold", "Marathon", None, None, None, "Ruth Chepngetich won.")
    answer = Answer("Who won?", True, "Fans cheered. [1]", [shown], ranked=[shown, gold])

    scored = score(question, answer)

    assert (scored.strict_rank, scored.loose_rank) == (2, 2)
    assert (scored.shown_sources, scored.sources_holding) == (1, 0)

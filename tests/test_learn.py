"""`python -m index.learn` on a tiny question set: it writes a model the answer step loads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from index.answer.answer_model import AnswerModel
from index.build.reindex import reindex
from index.learn.answer_model import ANSWER_ABOVE, Outcome, main, thresholds
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import write_article
from tests.fakes import FakeEmbedder

ARTICLES = {
    "darts.md": "Luke Humphries won the darts world championship final. Fans cheered in London.",
    "aid.md": "The United States has sent $56.2 billion in military aid. Congress met on Monday.",
    "volcano.md": "A volcano erupted near Grindavik in Iceland. Roads were closed for a week.",
    "bridge.md": "The new bridge will cost $2 billion. Work starts in the spring.",
}
COVERED = [
    ("Who won the darts world championship final?", "Luke Humphries"),
    ("How much military aid has the United States sent?", "$56.2 billion"),
    ("How much will the new bridge cost?", "$2 billion"),
    ("Where did a volcano erupt?", "Grindavik"),
]
UNCOVERED = [  # as the natural uncovered questions are written: no answers
    "Who won the snooker world championship final?",
    "How much did the new stadium cost?",
]


def write_questions(path: Path, questions: list[tuple[str, str]]) -> None:
    lines = [json.dumps({"question": q, "answers": [a]}) for q, a in questions]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def question_set(tmp_path: Path, fake_embedder: FakeEmbedder) -> Path:
    folder = tmp_path / "set"
    for name, text in ARTICLES.items():
        write_article(folder / "corpus", name, text, title=name.removesuffix(".md").title())
    reindex(Settings(corpus_dir=folder / "corpus", index_dir=folder / "index"), fake_embedder)
    write_questions(folder / "covered.jsonl", COVERED)
    lines = [json.dumps({"question": q, "why_uncovered": "no stadium"}) for q in UNCOVERED]
    (folder / "uncovered.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_the_learned_model_records_how_it_was_made_and_answers(
    question_set: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    out = tmp_path / "model.json"

    assert main(["--train", str(question_set), "--out", str(out)]) == 0

    model = AnswerModel.load(out)
    # The data folder is recorded under S/, not as this machine's path, with a fingerprint.
    assert model.made["command"] == f"python -m index.learn --train S/set --out {out}"
    (trained,) = model.made["train"]["sets"]
    assert trained["folder"] == "S/set"
    assert str(tmp_path) not in json.dumps({k: v for k, v in model.made.items() if k != "command"})
    assert len(trained["questions_sha256"]) == 64
    assert trained["covered"] == len(COVERED)
    assert model.made["calibrate"]["sets"][0]["uncovered"] == len(UNCOVERED)
    assert model.made["train"]["answer_sentences"] >= len(COVERED)
    assert len(model.made["date"]) == 10
    settings = Settings(index_dir=question_set / "index", answer_model=out)
    bot = Newsbot(settings, fake_embedder)
    assert bot.answerer.model.to_dict() == model.to_dict()  # type: ignore[attr-defined]
    answer = bot.ask("Who won the darts world championship final?")
    assert answer.citations[0].article_id == "darts.md"
    assert "Luke Humphries" in answer.answer


def test_a_folder_without_an_index_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--train", str(tmp_path), "--out", str(tmp_path / "m.json")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path} has no index/ folder"
    assert not (tmp_path / "m.json").exists()


def test_without_scikit_learn_it_says_how_to_install_it_in_one_line(
    question_set: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if it were not installed

    assert main(["--train", str(question_set), "--out", str(tmp_path / "m.json")]) == 1

    assert capsys.readouterr().err.splitlines() == [
        "error: python -m index.learn needs scikit-learn, an extra: pip install 'newsbot[learn]'"
    ]
    assert not (tmp_path / "m.json").exists()


def test_not_covered_starts_below_the_answers_it_may_not_lose() -> None:
    def o(confidence: float, correct: bool, covered: bool = True) -> Outcome:
        return Outcome(confidence, correct, covered)

    right = [o(c / 20, True) for c in range(1, 21)]  # 0.05, 0.10 ... 1.0
    wrong = [o(0.02, False), o(0.5, False), o(0.03, False, covered=False)]

    # 5% of 20 right answers: the lowest one may be lost, so "not covered" is below 0.10.
    assert thresholds(right + wrong, keep_right=0.95) == (ANSWER_ABOVE, 0.10)
    assert thresholds(right + wrong, keep_right=1.0) == (ANSWER_ABOVE, 0.05)
    # The hedge band never reaches above the answers.
    assert thresholds(right + wrong, keep_right=0.5, answer_above=0.3) == (0.55, 0.55)
    assert thresholds(wrong) == (ANSWER_ABOVE, 0.0)
    # By default, answered where a right answer's gain outweighs a wrong one's double cost.
    assert pytest.approx(2 / 3, abs=0.001) == ANSWER_ABOVE

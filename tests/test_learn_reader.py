"""`python -m index.learn.reader` on a tiny eval folder made here: the data it reads and
splits, and (slow: loads torch) a short run that writes a reader newsbot loads and uses."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from index.errors import NewsbotError
from index.learn import reader as learn
from index.learn import reader_data as data
from index.models.reader import Reader, reader_text

TEXTS = {
    "bridge": (
        "Harbour city opens its new bridge",
        "The city paid $84 million for the new bridge over the harbour. "
        "Mayor Ana Ruiz cut the ribbon on Friday. Traffic was light in the morning.",
    ),
    "ferry": (
        "Ferry company changes hands",
        "Blue Line Ferries will be taken over by Coastal Holdings next month. "
        "The deal keeps all 40 crew members. Fares will not rise this year.",
    ),
    "storm": (
        "Storm closes schools",
        "Schools in the valley closed on Monday as a storm brought 30 centimetres of snow. "
        "Buses resumed on Tuesday.",
    ),
    "library": (
        "Library extends its hours",
        "The central library will open until 9 p.m. on weekdays from June. "
        "The council added $2 million to its budget.",
    ),
}


def write_eval(root: Path) -> Path:
    def jsonl(path: Path, rows: list[dict[str, object]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    for split, ids in (("rtqa-train", ["bridge", "ferry", "storm"]), ("rtqa-2024", ["library"])):
        (root / split).mkdir(parents=True)
        with gzip.open(root / split / "articles.jsonl.gz", "wt") as f:
            for i in ids:
                title, text = TEXTS[i]
                f.write(json.dumps({"id": i, "title": title, "text": text, "url": None}) + "\n")
    jsonl(
        root / "rtqa-train" / "questions.jsonl",
        [
            {
                "id": "t1",
                "date": "2023/01/06",
                "question": "How much did the city pay for the bridge?",
                "answers": ["$84 million"],
                "gold_article_ids": ["bridge"],
            },
            {
                "id": "t2",
                "date": "2023/01/06",
                "question": "How much snow fell in the valley?",
                "answers": ["30 centimetres"],
                "gold_article_ids": ["storm"],
            },
        ],
    )
    jsonl(
        root / "rtqa-train" / "questions-uncovered.jsonl",
        [{"id": "u1", "question": "Who won the chess final?", "answers": ["Magnus"]}],
    )
    jsonl(
        root / "rtqa-dev" / "questions.jsonl",
        [
            {
                "id": "d1",
                "date": "2024/01/05",
                "question": "dev question, never read",
                "answers": ["x"],
                "gold_article_ids": ["library"],
            }
        ],
    )
    jsonl(
        root / "rtqa-2024" / "questions.jsonl",
        [
            {
                "id": "d1",
                "date": "2024/01/05",
                "question": "dev question, never read",
                "answers": ["x"],
                "gold_article_ids": ["library"],
            },
            {
                "id": "l1",
                "date": "2024/11/01",
                "question": "How late is the library open?",
                "answers": ["9 p.m."],
                "gold_article_ids": ["library"],
            },
        ],
    )
    jsonl(
        root / "natural" / "train-covered.jsonl",
        [
            {
                "id": "n1",
                "question": "who's taking over the ferry company?",
                "answers": ["Coastal Holdings"],
                "article_id": "ferry",
            },
            {
                "id": "n2",
                "question": "who opened the bridge?",
                "answers": ["Ana Ruiz"],
                "article_id": "bridge",
            },
            {
                "id": "n3",
                "question": "how many crew keep their jobs?",
                "answers": ["40"],
                "article_id": "ferry",
            },
        ],
    )
    jsonl(
        root / "natural" / "train-uncovered.jsonl",
        [{"id": "nu1", "question": "what did the zoo name the panda?"}],
    )
    return root


def test_questions_split_into_training_and_calibration_without_dev(tmp_path: Path) -> None:
    root = write_eval(tmp_path / "eval")

    train, calibrate = data.load_questions(root, held_out=1)

    asked = {i.question for i in train} | {i.question for i in calibrate}
    assert "dev question, never read" not in asked
    assert sum(i.source == "natural" for i in calibrate) == 1
    assert sum(i.source == "natural" for i in train) == 2
    assert [i.question for i in calibrate if i.source == "rtqa"] == [
        "How late is the library open?"
    ]
    assert {i.source for i in calibrate} >= {"natural-uncovered", "rtqa-uncovered"}


def test_positives_are_gold_sentences_holding_the_answer(tmp_path: Path) -> None:
    root = write_eval(tmp_path / "eval")
    train, calibrate = data.load_questions(root, held_out=0)
    cands = data.Candidates(data.load_articles(root))

    data.fill(train, cands, pools=False)
    data.fill(calibrate, cands, pools=True)

    bridge = next(i for i in train if i.question.startswith("How much did the city pay"))
    assert [c.sentence for c in bridge.positives] == [
        "The city paid $84 million for the new bridge over the harbour."
    ]
    negatives = {c.sentence for c in bridge.negatives}
    assert "Mayor Ana Ruiz cut the ribbon on Friday." in negatives
    assert not any("$84 million" in s for s in negatives)
    mayor = bridge.negatives[0]
    assert mayor.text == reader_text(mayor.sentence, TEXTS[mayor.article][0], _before(mayor))
    uncovered = next(i for i in calibrate if i.source == "natural-uncovered")
    assert uncovered.pool and not uncovered.positives


def _before(candidate: data.Candidate) -> str:
    text = TEXTS[candidate.article][1]
    start = text.index(candidate.sentence)
    head = text[:start].strip()
    return head.rsplit(". ", 1)[-1] if head else ""


@pytest.mark.integration
def test_a_short_run_writes_a_reader_that_loads_and_reads(tmp_path: Path) -> None:
    root = write_eval(tmp_path / "eval")
    out = tmp_path / "reader"

    code = learn.main(
        [
            "--eval",
            str(root),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch",
            "2",
            "--negatives",
            "2",
            "--held-out",
            "1",
            "--threads",
            "1",
        ]
    )

    assert code == 0
    card = json.loads((out / "reader.json").read_text())
    assert card["training"]["steps"] >= 1
    assert card["made"]["seed"] == learn.SEED
    assert card["calibration"]["fit"]["questions"] >= 3
    reader = Reader(out)
    scores = reader.scores(
        "who's taking over the ferry company?",
        [
            reader_text("Blue Line Ferries will be taken over by Coastal Holdings next month."),
            reader_text("Buses resumed on Tuesday."),
        ],
    )
    assert scores.shape == (2,) and np.all(np.abs(scores) <= 1.0001)
    assert scores[0] > scores[1]


def test_calibration_on_questions_all_wrong_is_refused_in_a_line() -> None:
    class Flat:
        def scores(self, question: str, texts: list[str]) -> np.ndarray:
            return np.zeros(len(texts))

    item = data.Item("who won?", "natural-uncovered", [], [])
    item.pool = [data.Candidate("Rain fell. [SEP] T |", "Rain fell.", "a", 0)]

    with pytest.raises(NewsbotError, match="cannot calibrate on 1 questions"):
        learn.calibrate([item], Flat())  # type: ignore[arg-type]


def test_an_eval_folder_lacking_a_file_is_refused_in_a_line(tmp_path: Path) -> None:
    root = write_eval(tmp_path / "eval")
    (root / "natural" / "train-uncovered.jsonl").unlink()

    with pytest.raises(NewsbotError, match=r"lacks natural/train-uncovered\.jsonl$"):
        learn.main(["--eval", str(root), "--out", str(tmp_path / "reader")])


def test_the_answer_cut_is_where_right_answers_outweigh_twice_the_wrong() -> None:
    # Below 0.6 two wrong answers for each right one; from 0.6 up, right ones only.
    chance = np.array([0.4, 0.45, 0.5, 0.6, 0.7, 0.8])
    right = np.array([True, False, False, True, True, True])
    weight = np.ones(6)

    cut = learn.answer_cut(chance, right, weight, floor=0.1)

    assert 0.5 < cut <= 0.6
    assert learn.answer_cut(chance, right, weight, floor=0.7) == 0.7  # never below the floor

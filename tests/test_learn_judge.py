"""The reader's judge (a cross-encoder over the bi-encoder's best sentences): how a reader
with one scores, and (slow: loads torch) `python -m index.learn.judge` on a tiny eval
folder made here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.errors import NewsbotError
from index.learn import judge as learn_judge
from index.learn import reader as learn_reader
from index.models.reader import (
    JUDGE_WEIGHTS,
    JUDGED,
    READER_DIR,
    WEIGHTS,
    Reader,
    overlap,
    reader_text,
)
from tests.test_learn_reader import write_eval

pytestmark = pytest.mark.integration

SENTENCES = [
    reader_text("Blue Line Ferries will be taken over by Coastal Holdings next month.", "Ferries"),
    *(
        reader_text(s)
        for s in (
            "The deal keeps all 40 crew members.",
            "Fares will not rise this year.",
            "Buses resumed on Tuesday.",
            "The council added $2 million to its budget.",
            "Traffic was light in the morning.",
            "Mayor Ana Ruiz cut the ribbon on Friday.",
            "Schools in the valley closed on Monday.",
            "The central library will open until 9 p.m. on weekdays.",
            "The city paid $84 million for the new bridge.",
            "A storm brought 30 centimetres of snow.",
            "The harbour company will run two more boats in summer.",
            "Rents in the old town rose by a tenth.",
            "The museum's new wing opens in May.",
            "Police closed the coast road after a landslide.",
            "The taking of photographs is banned in the gallery.",
        )
    ),
]


def reader_with_flat_judge(folder: Path, bias: float) -> Path:
    """A judge made of the shipped bi-encoder's layers and a head that ignores what they say
    (scale 0) and says `bias`."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copy(READER_DIR / "reader.json", folder / "reader.json")
    state = load_file(str(READER_DIR / WEIGHTS))
    state["head.weight"] = torch.zeros(1, 1)
    state["head.bias"] = torch.tensor([bias])
    save_file(state, str(folder / JUDGE_WEIGHTS))
    return folder


def test_the_judge_scores_the_sentences_sharing_most_words_and_ranks_the_rest_below(
    tmp_path: Path,
) -> None:
    question = "who's taking over the ferry company?"
    reader = Reader(reader_with_flat_judge(tmp_path, 3.5))
    words = overlap(question, SENTENCES)

    scores = reader.scores(question, SENTENCES)

    read = set(np.argsort(-words, kind="stable")[:JUDGED].tolist())
    assert np.allclose([scores[i] for i in read], 3.5, atol=0.05)  # the judge's say
    rest = [i for i in range(len(SENTENCES)) if i not in read]
    assert rest and max(scores[i] for i in rest) < 3.4
    assert list(np.argsort(-scores[rest], kind="stable")) == list(
        np.argsort(-words[rest], kind="stable")
    )
    assert words[0] > 0 and 0 in read  # the ferry sentence shares "ferry"


def test_a_judge_without_a_head_is_refused_in_a_line(tmp_path: Path) -> None:
    from index.errors import ModelLoadError

    shutil.copy(READER_DIR / "reader.json", tmp_path / "reader.json")
    shutil.copy(READER_DIR / WEIGHTS, tmp_path / JUDGE_WEIGHTS)  # layers, and no head

    with pytest.raises(ModelLoadError, match="has no head"):
        Reader(tmp_path).scores("who?", SENTENCES[:2])


JUDGE_RUN = ["--epochs", "10", "--batch", "2", "--lr", "1e-4"]


def test_a_short_run_trains_a_judge_that_the_reader_then_uses(tmp_path: Path) -> None:
    root = write_eval(tmp_path / "eval")
    # Questions like the calibrating ones, so that a short run can get some of them right.
    more = [
        ("When does the library close on weekdays?", "9 p.m.", "library"),
        ("Who is buying the ferry firm?", "Coastal Holdings", "ferry"),
        ("Who cut the ribbon on the bridge?", "Ana Ruiz", "bridge"),
        ("How many crew members does the deal keep?", "40", "ferry"),
    ]
    with (root / "rtqa-train" / "questions.jsonl").open("a") as f:
        for n, (question, answer, article) in enumerate(more):
            row = {"id": f"m{n}", "date": "2023/02/03", "question": question}
            f.write(json.dumps({**row, "answers": [answer], "gold_article_ids": [article]}) + "\n")
    bi_encoder, out = tmp_path / "bi", tmp_path / "reader"
    common = ["--eval", str(root), "--held-out", "1", "--threads", "1"]
    bi_args = ["--out", str(bi_encoder), "--epochs", "1", "--batch", "2", "--negatives", "2"]
    assert learn_reader.main([*common, *bi_args]) == 0

    code = learn_judge.main(
        [*common, "--bi-encoder", str(bi_encoder), "--out", str(out), *JUDGE_RUN]
    )

    assert code == 0
    card = json.loads((out / "reader.json").read_text())
    assert card["training"]["steps"] >= 1
    assert card["made"]["seed"] == learn_judge.SEED
    assert card["bi_encoder"]["training"]["steps"] >= 1
    assert card["calibration"]["fit"]["questions"] >= 3
    assert sorted(p.name for p in out.iterdir()) == ["judge.safetensors", "reader.json"]
    reader = Reader(out)
    assert reader.judge_path == out / JUDGE_WEIGHTS
    scores = reader.scores("who's taking over the ferry company?", SENTENCES[:3])
    judge = reader.judge("who's taking over the ferry company?", SENTENCES[:3])
    assert np.allclose(scores, judge)  # three sentences: the judge reads them all


def test_a_judge_needs_a_reader_to_start_from(tmp_path: Path) -> None:
    root = write_eval(tmp_path / "eval")

    with pytest.raises(NewsbotError, match=r"no bi-encoder in .*: train one first"):
        learn_judge.main(["--eval", str(root), "--bi-encoder", str(tmp_path / "none")])
    with pytest.raises(NewsbotError, match=r"no judge in .*: train it first"):
        learn_judge.main(["--eval", str(root), "--out", str(tmp_path), "--calibrate-only"])

"""benchmarks/eval_uncovered.py: uncovered questions lose every article holding their answer."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "eval_uncovered.py"


def test_uncovered_questions_keep_no_article_with_their_answer(tmp_path: Path) -> None:
    eval_set = tmp_path / "set"
    eval_set.mkdir()
    articles = [{"id": f"a{i}", "url": f"https://x.example/{i}", "title": "t", "text": "x"}
                for i in range(8)]  # fmt: skip
    with gzip.open(eval_set / "articles.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(a) + "\n" for a in articles)
    questions = [
        # Answered by one or two articles each: any of them may be chosen.
        {"id": "q0", "answer_article_ids": ["a0"], "gold_article_ids": ["a0"]},
        {"id": "q1", "answer_article_ids": ["a1", "a2"], "gold_article_ids": ["a1"]},
        {"id": "q2", "answer_article_ids": ["a3"], "gold_article_ids": ["a3"]},
        {"id": "q3", "answer_article_ids": ["a4"], "gold_article_ids": ["a4"]},
        # Answered by six articles: over --max-answer-articles 5, never made uncovered.
        {"id": "q4", "answer_article_ids": ["a2", "a3", "a4", "a5", "a6", "a7"],
         "gold_article_ids": ["a7"]},
    ]  # fmt: skip
    with open(eval_set / "questions.jsonl", "w", encoding="utf-8") as out:
        out.writelines(
            json.dumps({**q, "question": "?", "answers": ["x"]}) + "\n" for q in questions
        )
    out_dir = tmp_path / "out"

    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--set", str(eval_set), "--out", str(out_dir),
         "--share", "1", "--max-answer-articles", "5"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip

    def ids(name: str) -> list[str]:
        lines = (out_dir / name).read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["id"] for line in lines]

    with gzip.open(out_dir / "articles.jsonl.gz", "rt", encoding="utf-8") as kept_file:
        kept = {json.loads(line)["id"] for line in kept_file}
    uncovered, covered = ids("uncovered.jsonl"), ids("covered.jsonl")
    by_id = {q["id"]: q for q in questions}
    assert uncovered == ["q0", "q1", "q2", "q3"]  # all four eligible
    for qid in uncovered:
        assert not kept & set(by_id[qid]["answer_article_ids"])
    for qid in covered:
        assert kept & set(by_id[qid]["answer_article_ids"])
        assert kept & set(by_id[qid]["gold_article_ids"])
    assert covered == ["q4"]  # a5-a7 hold its answer; a7, its gold article, stays
    assert kept == {"a5", "a6", "a7"}
    assert "3 articles (5 left out), 1 covered and 4 uncovered" in done.stdout

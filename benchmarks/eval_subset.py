"""Write a held-out slice of an eval set: the articles of some weeks and their questions.

rtqa-dev is the first eight weeks of 2024; rtqa-2024's later weeks were never used to tune
newsbot, so a slice of them checks that a change helps on questions it was not chosen on:

    python benchmarks/eval_subset.py --from 2024-03-01 --to 2024-05-10 --out /tmp/held
    newsbot eval --questions /tmp/held/questions.jsonl --articles /tmp/held/articles.jsonl.gz

Articles: those retrieved in the weeks `--from`..`--to` (`retrieved_week`, inclusive).
Questions: those asked from a week before `--from` to `--to` with a gold article among them
(a week's articles are retrieved at its end, after its questions).
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DEFAULT_SET = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "rtqa-2024"


def copy_articles(source_set: Path, out: Path, keep: Callable[[dict[str, Any]], bool]) -> set[str]:
    """Copy the articles of `source_set` that `keep` accepts into `out`; their ids."""
    kept: set[str] = set()
    with (
        gzip.open(source_set / "articles.jsonl.gz", "rt", encoding="utf-8") as source,
        gzip.open(out / "articles.jsonl.gz", "wt", encoding="utf-8") as target,
    ):
        for line in source:
            article = json.loads(line)
            if keep(article):
                kept.add(article["id"])
                target.write(line)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="eval set folder")
    parser.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="end", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    args = parser.parse_args()

    first, last = args.start.strftime("%Y%m%d"), args.end.strftime("%Y%m%d")
    args.out.mkdir(parents=True, exist_ok=True)
    kept = copy_articles(args.set, args.out, lambda a: first <= a["retrieved_week"] <= last)
    asked_from = args.start - timedelta(days=7)
    questions = 0
    with (
        open(args.set / "questions.jsonl", encoding="utf-8") as source,
        open(args.out / "questions.jsonl", "w", encoding="utf-8") as target,
    ):
        for line in source:
            question = json.loads(line)
            asked = date.fromisoformat(question["date"].replace("/", "-"))
            if asked_from < asked <= args.end and kept & set(question["gold_article_ids"]):
                questions += 1
                target.write(line)
    print(f"{len(kept)} articles, {questions} questions in {args.out}")


if __name__ == "__main__":
    main()

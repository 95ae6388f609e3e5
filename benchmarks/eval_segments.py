"""Answers from an index of two segments, against the same index as one (issue 19).

Writes a corpus of rtqa-dev's articles in one of two states, as one JSONL file: `partial`
lacks 150 articles (chosen at random, `--seed`) and has 30 others edited (a sentence
appended); `whole` is every article as given. Indexing `whole`, then `partial`, then `whole`
again leaves an index of two segments: the first holds the articles of the first run but
those 180, which are dead there; the second holds them, as the last run wrote them again.
Run from the repository root:

    python benchmarks/eval_segments.py whole --out /tmp/seg/articles.jsonl.gz
    newsbot index --corpus /tmp/seg/articles.jsonl.gz --index-dir /tmp/seg/index
    newsbot eval --questions ../shared/eval/rtqa-dev/questions.jsonl \\
                 --articles /tmp/seg/articles.jsonl.gz --index-dir /tmp/seg/index
    python benchmarks/eval_segments.py partial --out /tmp/seg/articles.jsonl.gz
    newsbot index --corpus /tmp/seg/articles.jsonl.gz --index-dir /tmp/seg/index
    python benchmarks/eval_segments.py whole --out /tmp/seg/articles.jsonl.gz
    newsbot index --corpus /tmp/seg/articles.jsonl.gz --index-dir /tmp/seg/index
    newsbot eval --questions ../shared/eval/rtqa-dev/questions.jsonl \\
                 --articles /tmp/seg/articles.jsonl.gz --index-dir /tmp/seg/index

The first eval is the one-segment figure, the last the two-segment one (docs/evaluation.md,
"An index of several segments").
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ARTICLES = REPO.parent / "shared" / "eval" / "rtqa-dev" / "articles.jsonl.gz"
REMOVED = 150
EDITED = 30
EDIT_SENTENCE = "This article was updated."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", choices=("whole", "partial"))
    parser.add_argument("--out", type=Path, required=True, help="the corpus file to write")
    parser.add_argument("--articles", type=Path, default=DEFAULT_ARTICLES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with gzip.open(args.articles, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    if args.state == "partial":
        rng = random.Random(args.seed)
        ids = [r["id"] for r in rows]
        removed = set(rng.sample(ids, REMOVED))
        edited = set(rng.sample(sorted(set(ids) - removed), EDITED))
        rows = [
            {**r, "text": f"{r['text']}\n\n{EDIT_SENTENCE}"} if r["id"] in edited else r
            for r in rows
            if r["id"] not in removed
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out, "wt", encoding="utf-8") as handle:
        for r in rows:
            handle.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} articles written to {args.out}")


if __name__ == "__main__":
    main()

"""Split an eval set into covered and uncovered questions, and the articles to index for them.

"Not covered" can only be measured on questions the index really cannot answer. This makes
them honestly: a seeded share of the questions is chosen, and every article holding one of
their answer strings (`answer_article_ids`) is left out of the articles. Only questions
whose answer is in at most `--max-answer-articles` articles may be chosen: an answer such as
"Biden" is in hundreds, and leaving them all out would leave little news to ask about. The
other questions stay covered if an article holding their answer is still there (leaving
articles out can take the last one away: those questions are dropped, and counted):

    python benchmarks/eval_uncovered.py --set ../shared/eval/rtqa-dev --out /tmp/unc
    newsbot eval --articles /tmp/unc/articles.jsonl.gz --questions /tmp/unc/covered.jsonl \\
                 --uncovered /tmp/unc/uncovered.jsonl

`--set` is a folder with `articles.jsonl.gz` and `questions.jsonl` (an eval set, or a slice
written by eval_subset.py). An index of the whole set can be reused: `newsbot index --corpus
/tmp/unc/articles.jsonl.gz --index-dir COPY_OF_IT` only removes articles (no model call).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from eval_subset import copy_articles  # benchmarks/, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, required=True, help="eval set folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument(
        "--share", type=float, default=0.5, help="share of questions made uncovered (0.5)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the choice's random seed (0)")
    parser.add_argument(
        "--max-answer-articles",
        type=int,
        default=20,
        help="only questions answered by at most this many articles may be chosen (20)",
    )
    args = parser.parse_args()

    with open(args.set / "questions.jsonl", encoding="utf-8") as source:
        questions = [json.loads(line) for line in source if line.strip()]
    eligible = [
        i
        for i, q in enumerate(questions)
        if len(q["answer_article_ids"]) <= args.max_answer_articles
    ]
    chosen = set(random.Random(args.seed).sample(eligible, k=_count(args, eligible)))
    removed = {aid for i in chosen for aid in questions[i]["answer_article_ids"]}

    args.out.mkdir(parents=True, exist_ok=True)
    kept = copy_articles(args.set, args.out, lambda a: a["id"] not in removed)
    covered = [
        q
        for i, q in enumerate(questions)
        if i not in chosen
        and kept & set(q["answer_article_ids"])
        and kept & set(q["gold_article_ids"])
    ]
    uncovered = [questions[i] for i in sorted(chosen)]
    for name, rows in (("covered.jsonl", covered), ("uncovered.jsonl", uncovered)):
        with open(args.out / name, "w", encoding="utf-8") as target:
            target.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in rows)
    dropped = len(questions) - len(covered) - len(uncovered)
    print(
        f"{len(kept)} articles ({len(removed)} left out), {len(covered)} covered and "
        f"{len(uncovered)} uncovered questions ({dropped} dropped: their answer or gold "
        f"articles were left out too) in {args.out}"
    )


def _count(args: argparse.Namespace, eligible: list[int]) -> int:
    if not 0 < args.share <= 1:
        raise SystemExit("--share must be above 0 and at most 1")
    return round(args.share * len(eligible))


if __name__ == "__main__":
    main()

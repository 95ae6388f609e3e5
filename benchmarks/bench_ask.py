"""Question latency: warm `Newsbot.ask` with the real model over an index built like bench_index's.

Run from the repository root:

    python benchmarks/bench_ask.py --limit 150
    python benchmarks/bench_ask.py --index-dir /tmp/bench-index   # builds once, reuses after
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from bench_index import (
    DEFAULT_LIMIT,
    REPO,
    bench_settings,
    cores,
    default_articles,
    load_model,
    machine_line,
    read_records,
    write_corpus,
)

from index.build.reindex import reindex
from index.errors import NewsbotError
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot
from index.store.layout import IndexLayout

DEFAULT_QUESTIONS = REPO.parent / "shared" / "eval" / "rtqa-dev" / "questions.jsonl"
DEFAULT_COUNT = 50
# Used when no questions file is found: questions about the seed article, and one it lacks.
BUILTIN_QUESTIONS = [
    "How much aid has the US sent to Ukraine?",
    "Which missiles may Ukraine now use to strike inside Russia?",
    "Who decided to let Ukraine strike deeper into Russia?",
    "Why did Biden resist the requests before?",
    "Which country sent soldiers to help Russia?",
    "What did Trump say about the war?",
    "Who won the Chicago Marathon?",
]


def default_questions() -> Path | None:
    return DEFAULT_QUESTIONS if DEFAULT_QUESTIONS.exists() else None


def read_questions(path: Path | None, count: int) -> tuple[list[str], list[str]]:
    """Up to `count` questions (all when 0), and the article ids they name as their sources."""
    if path is None:
        questions = BUILTIN_QUESTIONS
        return (questions[:count] if count else questions), []
    picked: list[str] = []
    sources: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if not record.get("question"):
                continue
            picked.append(str(record["question"]))
            sources.extend(str(i) for i in record.get("gold_article_ids") or [])
            if count and len(picked) == count:
                break
    return picked, sources


def time_the_reader(bot: Newsbot) -> list[float]:
    """A list that gets the milliseconds of each of the reader's calls (none without one)."""
    calls: list[float] = []
    reader = getattr(bot.answerer, "reader", None)
    if reader is None:
        return calls
    scores = reader.scores

    def timed(question: str, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return scores(question, texts)
        finally:
            calls.append((time.perf_counter() - started) * 1000)

    reader.scores = timed
    return calls


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time warm Newsbot.ask with the real model (p50/p95/max) and count how "
        "many questions are answered.",
    )
    parser.add_argument(
        "--articles",
        type=Path,
        default=default_articles(),
        help="articles to index when building: a .jsonl/.jsonl.gz of {id,url,title,text} "
        f"objects or a corpus folder [default: {default_articles()}]",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"articles to index when building [default: {DEFAULT_LIMIT}]",
    )
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=None,
        help="use the index in this folder, building it there first if it has none "
        "[default: build one in a temporary folder]",
    )
    parser.add_argument(
        "--questions",
        type=Path,
        default=default_questions(),
        help="a .jsonl with a 'question' field per line "
        f"[default: {default_questions() or 'built-in questions about the seed article'}]",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        help=f"questions to ask, 0 for all [default: {DEFAULT_COUNT}]",
    )
    parser.add_argument(
        "--random-articles",
        action="store_true",
        help="index the first --limit articles only, not the questions' source articles first",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.questions is not None and not args.questions.exists():
        print(f"error: no questions at {args.questions}", file=sys.stderr)
        return 1
    questions, sources = read_questions(args.questions, args.count)
    if not questions:
        print("error: no questions to ask", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as tmp:
        index_dir = args.index_dir or Path(tmp) / "index"
        settings = bench_settings(Path(tmp) / "corpus", index_dir)
        print(machine_line())
        embedder = load_embedder(settings)
        print(f"model: {settings.embed_model}; load {load_model(embedder):.2f} s (excluded)")

        if IndexLayout(index_dir).exists():
            print(f"index: reusing {index_dir}")
        else:
            if not args.articles.exists():
                print(f"error: no articles at {args.articles}", file=sys.stderr)
                return 1
            prefer = [] if args.random_articles else sources
            records = read_records(args.articles, args.limit, prefer_ids=prefer)
            write_corpus(records, settings.corpus_dir)
            report = reindex(settings, embedder)
            covered = len({str(r.get("id")) for r in records} & set(sources))
            print(
                f"index: built from {len(records)} articles of {args.articles} in "
                f"{report.seconds:.1f} s"
                + (
                    f" ({covered} of the questions' {len(set(sources))} source articles included)"
                    if sources
                    else ""
                )
            )

        # Answer as `newsbot ask` and the bot do: an embedder made for questions (QUERY_THREADS).
        query_embedder = load_embedder(settings, purpose="query")
        load_model(query_embedder)
        started = time.perf_counter()
        bot = Newsbot(settings, query_embedder)
        opened_ms = (time.perf_counter() - started) * 1000
        try:
            status = bot.status()
            print(
                f"index: {status.articles} articles, {status.chunks} chunks, store {status.store}"
            )
            # Opening includes a reader's private copy of the embedded vector store.
            print(f"open: {opened_ms:.0f} ms (catalog, vectors, BM25; model load excluded)")
            bot.ask(questions[0])  # warm-up: first-call costs are not what a user waits for
            reading = time_the_reader(bot)
            latencies: list[float] = []
            reader_ms: list[float] = []
            answered = 0
            for question in questions:
                reading.clear()
                started = time.perf_counter()
                answer = bot.ask(question)
                latencies.append((time.perf_counter() - started) * 1000)
                reader_ms.append(sum(reading))
                answered += answer.found
        finally:
            bot.close()

    total = len(questions)
    print(
        f"model threads while asking: QUERY_THREADS {settings.query_threads} "
        f"(backend {settings.embed_backend}; {cores()} cores)"
    )
    print(
        f"questions: {total} from {args.questions or 'the built-in list'} (after one warm-up ask)"
    )
    print(
        f"ask latency: p50 {percentile(latencies, 50):7.1f} ms   "
        f"p95 {percentile(latencies, 95):7.1f} ms   max {max(latencies):7.1f} ms"
    )
    if any(reader_ms):
        print(
            f"  of which the reader: p50 {percentile(reader_ms, 50):7.1f} ms   "
            f"p95 {percentile(reader_ms, 95):7.1f} ms   max {max(reader_ms):7.1f} ms"
        )
    print(
        f"answered: {answered}/{total} ({answered / total:.0%}); "
        f"not covered: {total - answered}/{total} ({(total - answered) / total:.0%})"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NewsbotError as exc:
        sys.exit(f"error: {exc}")

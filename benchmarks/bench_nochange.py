"""A reindex that finds nothing changed, on a large corpus, with the fake model.

The fake model (tests/fakes.py) makes the figures the pipeline's own: listing, stat'ing,
reading and hashing the corpus, and checking the index in service. Run from the repository
root:

    python benchmarks/bench_nochange.py --articles ../shared/eval/rtqa-2024/articles.jsonl.gz
    python benchmarks/bench_nochange.py --layout jsonl

`--layout files` writes each article as a Markdown file of its own (1,000 to a folder);
`--layout jsonl` writes them all to one JSONL file. Every file's mtime is set a minute back,
so that a file's stat is trusted (see docs/architecture.md, "What changed").
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.fakes, which is not an installed package

from index.build.reindex import reindex  # noqa: E402
from index.settings import Settings  # noqa: E402
from tests.fakes import FakeEmbedder  # noqa: E402

DEFAULT_ARTICLES = REPO.parent / "shared" / "eval" / "rtqa-2024" / "articles.jsonl.gz"
FILES_PER_FOLDER = 1000
AGED_SECONDS = 60


def read_records(path: Path, limit: int | None) -> list[dict[str, Any]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return records[:limit] if limit else records


def write_corpus(records: Sequence[dict[str, Any]], folder: Path, layout: str) -> None:
    folder.mkdir(parents=True)
    if layout == "jsonl":
        with open(folder / "articles.jsonl", "w", encoding="utf-8") as handle:
            for r in records:
                fields = {"id": r["id"], "title": r["title"], "text": r["text"], "url": r["url"]}
                handle.write(json.dumps(fields, ensure_ascii=False) + "\n")
    else:
        for i, r in enumerate(records):
            sub = folder / f"part-{i // FILES_PER_FOLDER:03d}"
            sub.mkdir(exist_ok=True)
            title = json.dumps(r["title"], ensure_ascii=False)
            body = f"---\ntitle: {title}\nurl: {json.dumps(r['url'])}\n---\n{r['text']}\n"
            (sub / f"{r['id']}.md").write_text(body, encoding="utf-8")
    then = time.time_ns() - AGED_SECONDS * 1_000_000_000
    for root, _, files in os.walk(folder):
        for name in files:
            os.utime(os.path.join(root, name), ns=(then, then))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=DEFAULT_ARTICLES)
    parser.add_argument("--limit", type=int, default=None, help="the first N articles only")
    parser.add_argument("--layout", choices=("files", "jsonl"), default="files")
    parser.add_argument("--runs", type=int, default=5, help="no-change reindexes timed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    records = read_records(args.articles, args.limit)
    embedder = FakeEmbedder()
    with tempfile.TemporaryDirectory(prefix="bench-nochange-") as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        write_corpus(records, corpus, args.layout)
        settings = Settings(  # type: ignore[call-arg]  # pydantic-settings' own argument
            _env_file=None,
            corpus_dir=corpus,
            index_dir=index_dir,
            chroma_host=None,
            embed_model=embedder.name,
        )
        started = time.perf_counter()
        first = reindex(settings, embedder)
        full = time.perf_counter() - started
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            report = reindex(settings, embedder)
            times.append(time.perf_counter() - started)
            assert not report.changed, "a no-change reindex found changes"
    print(
        f"{len(records)} articles as {args.layout} ({first.chunks_total} chunks), fake model: "
        f"full index {full:.1f} s; no-change reindex median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What finding syndicated copies costs at index time: signing each article (MinHash of its
word shingles, once per new or changed article) and grouping every article into stories
(at every build). No model is loaded.

Run from the repository root:

    python benchmarks/bench_stories.py                       # rtqa-dev's 1,538 articles
    python benchmarks/bench_stories.py --articles ../shared/eval/rtqa-2024/articles.jsonl.gz
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench_index import default_articles, read_records

from index.build.stories import Syndication


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=None, help="a .jsonl(.gz) or folder")
    parser.add_argument("--limit", type=int, default=1_000_000, help="at most this many")
    args = parser.parse_args(argv)
    path = args.articles or default_articles()
    records = read_records(path, args.limit)
    texts = [str(r.get("text") or "") for r in records]
    ids = [str(r.get("id", i)) for i, r in enumerate(records)]
    syndication = Syndication()

    started = time.perf_counter()
    signatures = dict(zip(ids, syndication.signatures(texts), strict=True))
    signed = time.perf_counter() - started
    started = time.perf_counter()
    stories = syndication.stories(signatures)
    grouped = time.perf_counter() - started

    sizes = [n for n in Counter(stories.values()).values() if n > 1]
    print(f"articles: {len(texts)} from {path}")
    print(f"signing: {signed:.2f} s, {1000 * signed / max(len(texts), 1):.2f} ms an article")
    print(f"grouping all of them (every build): {grouped:.2f} s")
    print(f"syndicated copies: {sum(sizes) - len(sizes)}, in {len(sizes)} stories")
    return 0


if __name__ == "__main__":
    sys.exit(main())

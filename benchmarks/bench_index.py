"""Indexing throughput: newsbot's real `reindex` against raw `SentenceTransformer.encode`,
or one embedding backend against another.

Both embed the same chunk texts with the same loaded model; model load time is excluded
from both. Run from the repository root:

    python benchmarks/bench_index.py --limit 150
    python benchmarks/bench_index.py --backends torch,onnx,onnx-int8 --limit 400

With `--backends`, each backend indexes the same chunks with newsbot's real `reindex`; its
vectors are compared with the first backend's (cosine) and scored on the questions' dense-only
strict hit@k (an answer string in one of the first k chunks, from a gold article).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from index.build.reindex import reindex
from index.errors import NewsbotError
from index.ingest.chunks import Chunker
from index.ingest.corpus.scan import scan_corpus
from index.models.embeddings import Embedder, load_embedder
from index.settings import EmbedBackend, Settings

REPO = Path(__file__).resolve().parent.parent
S = TypeVar("S", bound=Settings)
DEFAULT_ARTICLES = REPO.parent / "shared" / "eval" / "rtqa-dev" / "articles.jsonl.gz"
DEFAULT_QUESTIONS = REPO.parent / "shared" / "eval" / "rtqa-dev" / "questions.jsonl"
BACKENDS: tuple[EmbedBackend, ...] = ("torch", "onnx", "onnx-int8")
HIT_KS = (1, 5)
SEED_CORPUS = REPO / "corpus"
DEFAULT_LIMIT = 150
# Forward passes run before each timed phase, so that neither pays for first-call set-up.
WARMUP_TEXTS = 16
LABEL_WIDTH = 44
RECORD_FIELDS = ("id", "url", "title", "text", "source", "published", "author")


def default_articles() -> Path:
    """The rtqa-dev articles next to the repository if present, else the seed corpus."""
    return DEFAULT_ARTICLES if DEFAULT_ARTICLES.exists() else SEED_CORPUS


def read_records(path: Path, limit: int, prefer_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Up to `limit` article records from a .jsonl(.gz) file or a corpus folder.

    Records whose id is in `prefer_ids` come first; the rest follow in file order.
    """
    records = list(_folder_records(path) if path.is_dir() else _jsonl_records(path))
    preferred = set(prefer_ids)
    first = [r for r in records if str(r.get("id")) in preferred]
    rest = [r for r in records if str(r.get("id")) not in preferred]
    return (first + rest)[:limit]


def _jsonl_records(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if isinstance(record, dict) and record.get("text"):
                    yield record


def _folder_records(path: Path) -> Iterator[dict[str, Any]]:
    for article in scan_corpus(path).articles:
        yield {name: getattr(article, name) for name in RECORD_FIELDS}


def write_corpus(records: Sequence[dict[str, Any]], folder: Path) -> Path:
    """A corpus folder holding `records` as one JSONL file."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "articles.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            fields = {k: record.get(k) for k in RECORD_FIELDS if record.get(k) is not None}
            handle.write(json.dumps(fields, ensure_ascii=False) + "\n")
    return folder


def bench_settings(
    corpus_dir: Path,
    index_dir: Path,
    *,
    kind: type[S] = Settings,  # type: ignore[assignment]  # the TypeVar's own bound
    **fields: Any,
) -> S:
    """Settings (of `kind`: the bot's for the bot's benchmarks) from the environment (not
    `.env`), the embedded store, the benchmark's folders."""
    return kind(  # type: ignore[call-arg]  # `_env_file` is pydantic-settings' own argument
        _env_file=None, corpus_dir=corpus_dir, index_dir=index_dir, chroma_host=None, **fields
    )


def load_model(embedder: Embedder) -> float:
    """Load the model and tokenizer now; the seconds it took (excluded from every figure)."""
    started = time.perf_counter()
    embedder.warm_up()
    embedder.count_tokens("warm up")
    return time.perf_counter() - started


def cores() -> int:
    return os.cpu_count() or 1


def machine_line() -> str:
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores()
    return (
        f"machine: {cores()} cores ({usable} usable by this process), "
        f"torch {torch.__version__}, python {sys.version.split()[0]}"
    )


class RecordingEmbedder:
    """The real embedder, with each `embed` call's texts and seconds recorded."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_tokens = inner.max_tokens
        self.calls: list[list[str]] = []
        self.vectors: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed(texts)
        self.seconds += time.perf_counter() - started
        self.calls.append(list(texts))
        self.vectors.update(zip(texts, vectors, strict=True))
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def warm_up(self) -> None:
        self.inner.warm_up()


def chunk_texts(settings: Settings, embedder: Embedder) -> list[str]:
    """What the indexer feeds the model: `Chunker.embed_text` of every chunk, in corpus order."""
    chunker = Chunker(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
    return [
        chunker.embed_text(article.title, chunk)
        for article in scan_corpus(settings.corpus_dir).articles
        for chunk in chunker.split(article)
    ]


def time_encode(model: Any, batches: Sequence[Sequence[str]], batch_size: int | None) -> float:
    """Seconds to encode `batches` (each with `batch_size`, or as one batch when None)."""
    started = time.perf_counter()
    for texts in batches:
        model.encode(
            list(texts),
            batch_size=batch_size or max(1, len(texts)),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return time.perf_counter() - started


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.1f} chunks/s ({seconds:6.2f} s)" if seconds > 0 else "n/a"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time newsbot's indexing with the real model against raw "
        "SentenceTransformer.encode on the same chunk texts (model load excluded).",
    )
    parser.add_argument(
        "--articles",
        type=Path,
        default=default_articles(),
        help="a .jsonl/.jsonl.gz of {id,url,title,text} objects, or a corpus folder "
        f"[default: {default_articles()}]",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"articles to index [default: {DEFAULT_LIMIT}]",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time every phase this many times and print the best [default: 1]",
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="compare these EMBED_BACKENDs (comma-separated, the first is the reference) "
        f"instead of newsbot against the raw encode; one of {', '.join(BACKENDS)}",
    )
    parser.add_argument(
        "--questions",
        type=Path,
        default=DEFAULT_QUESTIONS,
        help="with --backends: questions (.jsonl with question, answers, gold_article_ids) "
        "scored by dense-only strict hit@k; their gold articles are indexed first "
        f"[default: {DEFAULT_QUESTIONS}]",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch size for the raw encode, also passed to newsbot as EMBED_BATCH_SIZE "
        "[default: the EMBED_BATCH_SIZE setting]",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.articles.exists():
        print(f"error: no articles at {args.articles}", file=sys.stderr)
        return 1
    if args.backends:
        return compare_backends(args)
    import torch

    records = read_records(args.articles, args.limit)
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as tmp:
        # Against the raw SentenceTransformer.encode, newsbot runs on torch too.
        fields: dict[str, Any] = {"embed_backend": "torch"}
        if args.batch_size is not None:
            fields["embed_batch_size"] = args.batch_size
        settings = bench_settings(
            write_corpus(records, Path(tmp) / "corpus"), Path(tmp) / "index", **fields
        )
        batch_size = settings.embed_batch_size
        index_threads = settings.embed_threads or cores()
        print(machine_line())
        print(f"articles: {len(records)} from {args.articles}")
        print(f"model: {settings.embed_model}; store: embedded Chroma in a temporary folder")

        embedder = load_embedder(settings)
        print(f"model load: {load_model(embedder):.2f} s (excluded from both timings below)")
        embedder.embed(["warm up"] * WARMUP_TEXTS)
        model = embedder.model  # type: ignore[attr-defined]
        texts = chunk_texts(settings, embedder)

        newsbot_s, embed_s, raw_s, replay_s = [], [], [], []
        for run in range(args.repeat):
            # (1) newsbot's real indexing into a fresh index: scan, chunk, embed, Chroma and
            # catalog writes, BM25.
            run_settings = settings.overridden(index_dir=Path(tmp) / f"index-{run}")
            recording = RecordingEmbedder(embedder)
            started = time.perf_counter()
            report = reindex(run_settings, recording)
            newsbot_s.append(time.perf_counter() - started)
            embed_s.append(recording.seconds)
            newsbot_threads = torch.get_num_threads()
            embedded = [t for call in recording.calls for t in call]
            if sorted(texts) != sorted(embedded):
                print(
                    f"error: re-chunking gave {len(texts)} texts, newsbot embedded "
                    f"{len(embedded)} others",
                    file=sys.stderr,
                )
                return 1

            # (2) the same texts, straight into the same SentenceTransformer.
            torch.set_num_threads(cores())
            time_encode(model, [["warm up"] * WARMUP_TEXTS], None)
            raw_s.append(time_encode(model, [texts], batch_size))
            raw_threads = torch.get_num_threads()
            # (2b) newsbot's own model calls replayed: separates its batching from the rest.
            replay_s.append(time_encode(model, recording.calls, None))

    chunks = len(texts)
    sizes = [len(call) for call in recording.calls]
    best = f"best of {args.repeat}" if args.repeat > 1 else "one run"
    print(
        f"chunks: {chunks} from {len(report.added)} articles "
        f"(chunk_tokens {settings.chunk_tokens}, overlap {settings.chunk_overlap})"
    )
    print(
        f"torch threads: newsbot indexing {newsbot_threads} (EMBED_THREADS -> {index_threads}), "
        f"raw encode {raw_threads}"
    )
    print(
        f"EMBED_BATCH_SIZE {batch_size}; newsbot made {len(sizes)} embed() calls of "
        f"{min(sizes, default=0)}-{max(sizes, default=0)} texts "
        f"(mean {statistics.fmean(sizes) if sizes else 0:.0f})"
    )
    print(f"timings ({best}):")
    rows = [
        ("(1)  newsbot reindex", min(newsbot_s)),
        (f"(2)  raw encode, batch size {batch_size}", min(raw_s)),
        ("(2b) raw encode, newsbot's calls as batches", min(replay_s)),
    ]
    for label, seconds in rows:
        print(f"{label:<{LABEL_WIDTH}} {rate(chunks, seconds)}")
        if label.startswith("(1)"):
            other = min(n - e for n, e in zip(newsbot_s, embed_s, strict=True))
            print(
                f"{'':<5}of which embed() calls {min(embed_s):.2f} s; "
                f"chunking, Chroma, catalog, BM25 {other:.2f} s"
            )
    if min(raw_s) > 0:
        ratio = min(newsbot_s) / min(raw_s)
        print(
            f"(3)  overhead: newsbot indexing takes {ratio:.2f}x the raw encode time "
            f"({(ratio - 1) * 100:+.0f}%)"
        )
    return 0


def read_eval_questions(path: Path) -> list[dict[str, Any]]:
    """Questions with answers and gold articles, or none if `path` does not exist."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return [r for r in records if r.get("question") and r.get("answers")]


def contains_answer(passage: str, answers: Sequence[str]) -> bool:
    """An answer string in `passage`, case-insensitive, on word boundaries."""
    return any(
        re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", passage, re.IGNORECASE)
        for answer in answers
        if answer.strip()
    )


def dense_hits(
    query: Embedder,
    vectors: np.ndarray,
    passages: Sequence[tuple[str, str]],
    questions: Sequence[dict[str, Any]],
) -> dict[int, float]:
    """Strict hit@k of exact-cosine search over `vectors` (rows of (article id, passage))."""
    found = dict.fromkeys(HIT_KS, 0)
    for record in questions:
        scores = vectors @ query.embed_query(str(record["question"]))
        top = np.argsort(-scores, kind="stable")[: max(HIT_KS)]
        gold = {str(i) for i in record.get("gold_article_ids") or []}
        hits = [
            passages[i][0] in gold and contains_answer(passages[i][1], record["answers"])
            for i in top
        ]
        for k in HIT_KS:
            found[k] += any(hits[:k])
    return {k: found[k] / len(questions) for k in HIT_KS} if questions else {}


def compare_backends(args: argparse.Namespace) -> int:
    """Index the same chunks with each backend: speed, agreement with the first, hit@k."""
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        print(f"error: unknown backend(s) {', '.join(unknown)}", file=sys.stderr)
        return 1
    questions = read_eval_questions(args.questions)
    gold_ids = [str(i) for q in questions for i in q.get("gold_article_ids") or []]
    records = read_records(args.articles, args.limit, prefer_ids=gold_ids)
    present = {str(r.get("id")) for r in records}
    # Scored only where every gold article is indexed, so that a miss is the model's.
    scored = [q for q in questions if set(map(str, q.get("gold_article_ids") or [])) <= present]
    print(machine_line())
    print(
        f"articles: {len(records)} from {args.articles} "
        f"({len(present & set(gold_ids))} of them gold articles of the questions)"
    )
    print(f"questions scored: {len(scored)} of {len(questions)} from {args.questions}")
    rows: list[tuple[str, float, float, dict[int, float], str]] = []
    reference: dict[str, np.ndarray] = {}
    chunks = batch_size = 0
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as tmp:
        corpus = write_corpus(records, Path(tmp) / "corpus")
        fields = {} if args.batch_size is None else {"embed_batch_size": args.batch_size}
        for backend in backends:
            settings = bench_settings(
                corpus,
                Path(tmp) / f"index-{backend}",
                embed_backend=backend,
                embed_cache_dir=Path(tmp) / "models",
                **fields,
            )
            batch_size = settings.embed_batch_size
            embedder = load_embedder(settings)
            loaded = load_model(embedder)
            embedder.embed(["warm up"] * WARMUP_TEXTS)
            print(f"{backend}: model load (and ONNX export) {loaded:.2f} s, excluded")
            best: RecordingEmbedder | None = None
            best_total = float("inf")
            for run in range(args.repeat):
                recording = RecordingEmbedder(embedder)
                started = time.perf_counter()
                reindex(settings.overridden(index_dir=Path(tmp) / f"i-{backend}-{run}"), recording)
                total = time.perf_counter() - started
                if total < best_total:
                    best, best_total = recording, total
            assert best is not None
            chunker = Chunker(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
            passages = [
                (article.id, chunker.embed_text(article.title, chunk), chunk.text)
                for article in scan_corpus(corpus).articles
                for chunk in chunker.split(article)
            ]
            chunks = len(passages)
            matrix = np.stack([best.vectors[text] for _, text, _ in passages])
            if not reference:
                reference = {text: best.vectors[text] for _, text, _ in passages}
                agreement = "(reference)"
            else:
                cosines = np.array(
                    [
                        float(best.vectors[t] @ reference[t])
                        for _, t, _ in passages
                        if t in reference
                    ]
                )
                agreement = f"min {cosines.min():.4f} mean {cosines.mean():.4f}"
            query = load_embedder(settings, purpose="query")
            hits = dense_hits(query, matrix, [(a, p) for a, _, p in passages], scored)
            rows.append((backend, best_total, best.seconds, hits, agreement))

    best_of = f"best of {args.repeat}" if args.repeat > 1 else "one run"
    print(f"chunks: {chunks}; EMBED_BATCH_SIZE {batch_size}; timings {best_of}")
    header = "backend      reindex chunks/s  embed() chunks/s  speed-up  " + "  ".join(
        f"hit@{k}" for k in HIT_KS
    )
    print(header + "  cosine to " + backends[0])
    base = rows[0][1]
    for backend, total, embed_s, hits, agreement in rows:
        # No question scored (e.g. --questions /dev/null): a dash, not "nan".
        hit_text = "  ".join(f"{hits[k]:.3f}" if k in hits else "  –  " for k in HIT_KS)
        print(
            f"{backend:<12} {chunks / total:16.1f}  {chunks / embed_s:16.1f}  "
            f"{base / total:7.2f}x  {hit_text}  {agreement}"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NewsbotError as exc:
        sys.exit(f"error: {exc}")

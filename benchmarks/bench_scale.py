"""How reindexing grows with the corpus: full, no-change, +10 and 1-edit reindexes (issue 19).

With the fake model (tests/fakes.py), so that the figures are the pipeline's own. For each
corpus size and each store, the corpus is written as Markdown files (1,000 to a folder, every
mtime a minute back, as bench_nochange.py does) and indexed from nothing; 200 warm searches
are timed on it; then it is reindexed three times, in order: nothing changed; 10 new
articles; one article edited (a sentence appended). Run from the repository root:

    python benchmarks/bench_scale.py --sizes 2000 --stores embedded,server
    python benchmarks/bench_scale.py --sizes 2000,8655,x4 --json /tmp/scale.json
    python benchmarks/bench_scale.py --sizes synthetic:1000000 --stores embedded

`--sizes` takes a comma list of corpora:

- `N`: the first N articles of rtqa-2024 (`--articles`). The 10 new articles are the next
  10 records, which the corpus holds back: `8655` starts from the first 8,645 and reaches all
  8,655 with them.
- `x4`: those 8,645 articles written four times, each copy with an id of its own and a line
  appended to its text (and `?copy=N` to its URL), so that no two files are byte-identical;
  the 10 new articles are the last 10 records.
- `synthetic:N`: about N chunks of generated text, streamed to disk: articles of 10-15
  chunks, their words drawn from a made-up vocabulary of 50,000 words with Zipf frequencies,
  seeded (`--seed`), so no article duplicates another; the 10 new articles are the
  generator's next.

Each operation (an index or reindex through `index.build.reindex.reindex`, or the searches through
`index.newsbot.Newsbot`) runs in a child process of its own (`--child`), so that its peak RSS
is its own; meanwhile this process samples the disk the index folder takes (and, with
`--stores server`, a Chroma server's data folder, `chroma run` started on 127.0.0.1 by
tests/chroma_server.py) every 0.2 s. Only those public entry points are used, so the same
script measures the index before and after its internals change.

Peak RSS is the child's VmHWM (Linux), not `getrusage`'s ru_maxrss, which a child started
from this process inherits from it across exec; both are in `--json`. Disk is what the files
take on disk (as `du` counts them). `--profile DIR` writes a cProfile of every operation
(`python -m pstats DIR/FILE.prof`); it slows them, so do not compare its times.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.fakes and tests.chroma_server, not installed

from tests.chroma_server import ChromaServer  # noqa: E402
from tests.fakes import FakeEmbedder  # noqa: E402

DEFAULT_ARTICLES = REPO.parent / "shared" / "eval" / "rtqa-2024" / "articles.jsonl.gz"
STORES = ("embedded", "server")
FILES_PER_FOLDER = 1000
AGED_SECONDS = 60
ADDED_ARTICLES = 10
EDIT_SENTENCE = "This article was updated after publication with a correction from the editors."
REAL_COPIES = 4  # `x4`
SAMPLE_SECONDS = 0.2
DEFAULT_QUERIES = 200
WARMUP_QUERIES = 10
SEARCH_K = 5
MB = 1024 * 1024
# The operations, as the table names them and as --profile names their files.
OP_SLUGS = {"full": "full", "no change": "nochange", "+10": "add10", "1 edit": "edit"}

# The synthetic corpus. 50,000 words with Zipf exponent 1.07: about English's frequency curve.
VOCABULARY = 50_000
ZIPF_EXPONENT = 1.07
CHUNKS_PER_ARTICLE = (10, 15)
# Tokens (the fake model's: words and punctuation) of new text per chunk at the default
# chunking (200 tokens, 40 overlapping): measured on this generator's text with
# index.ingest.chunks.Chunker: 161 over 200 articles.
TOKENS_PER_CHUNK = 161
SENTENCE_WORDS = (6, 22)
PARAGRAPH_SENTENCES = (3, 6)
TITLE_WORDS = (5, 9)
QUERY_WORDS = (2, 5)
# Queries leave out the commonest words, as a question's content words are rarely those.
QUERY_MIN_RANK = 100
ONSETS = "b c d f g h j k l m n p r s t v w z br cr dr fl fr gl gr kl pl pr sk sl st tr ch sh th"
VOWELS = "a e i o u ai ea ie ou oa"
CODAS = ["", "", "", "n", "r", "s", "l", "t", "m", "k", "nd", "st"]


@dataclass(frozen=True)
class Doc:
    """An article as this benchmark writes it: `name.md` with a title and a URL."""

    name: str
    title: str
    url: str
    text: str

    def markdown(self) -> str:
        title, url = json.dumps(self.title, ensure_ascii=False), json.dumps(self.url)
        return f"---\ntitle: {title}\nurl: {url}\n---\n{self.text}\n"


@dataclass(frozen=True)
class CorpusSpec:
    """One `--sizes` entry."""

    label: str
    synthetic: bool
    count: int  # articles (real) or chunks (synthetic); 0: every record of the file
    copies: int = 1

    @classmethod
    def parse(cls, text: str) -> CorpusSpec:
        text = text.strip()
        if text == "x4":
            return cls(text, synthetic=False, count=0, copies=REAL_COPIES)
        if text.startswith("synthetic:"):
            return cls(text, synthetic=True, count=int(text.split(":", 1)[1]))
        return cls(text, synthetic=False, count=int(text))

    @property
    def slug(self) -> str:
        return self.label.replace(":", "-")


# --- the synthetic corpus ---------------------------------------------------------------


class SyntheticNews:
    """Seeded made-up news: Zipf-distributed words from a vocabulary of made-up words."""

    def __init__(self, seed: int, stream: int) -> None:
        self.words = made_up_words(np.random.default_rng(seed), VOCABULARY)
        weights = np.arange(1, len(self.words) + 1, dtype=np.float64) ** -ZIPF_EXPONENT
        self._cdf = np.cumsum(weights) / weights.sum()
        self._rng = np.random.default_rng([seed, stream])

    def _ranks(self, n: int) -> np.ndarray:
        found = np.searchsorted(self._cdf, self._rng.random(n))
        return np.minimum(found, len(self.words) - 1)

    def _between(self, bounds: tuple[int, int]) -> int:
        return int(self._rng.integers(bounds[0], bounds[1] + 1))

    def article(self, number: int) -> tuple[Doc, int]:
        """Article `number`, and the chunks it was written to make."""
        chunks = self._between(CHUNKS_PER_ARTICLE)
        tokens = chunks * TOKENS_PER_CHUNK
        words = self.words[self._ranks(tokens)].tolist()
        paragraphs: list[str] = []
        sentences: list[str] = []
        at = written = 0
        while written < tokens:
            n = self._between(SENTENCE_WORDS)
            first, *rest = words[at : at + n]
            sentences.append(" ".join([first.capitalize(), *rest]) + ".")
            at, written = at + n, written + n + 1  # n words and a full stop
            if len(sentences) >= self._between(PARAGRAPH_SENTENCES):
                paragraphs.append(" ".join(sentences))
                sentences = []
        if sentences:
            paragraphs.append(" ".join(sentences))
        title = " ".join(
            w.capitalize() for w in self.words[self._ranks(self._between(TITLE_WORDS))]
        )
        day = datetime.date(2024, 1, 1) + datetime.timedelta(days=number % 366)
        name = f"syn-{number:07d}"
        url = f"https://synthetic.example/{day:%Y/%m/%d}/{name}"
        return Doc(name, title, url, "\n\n".join(paragraphs)), chunks

    def query(self) -> str:
        picked: list[str] = []
        while len(picked) < self._between(QUERY_WORDS):
            rank = int(self._ranks(1)[0])
            if rank >= QUERY_MIN_RANK:
                picked.append(str(self.words[rank]))
        return " ".join(picked)


def made_up_words(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` distinct pronounceable words, shortest first (the commonest, by Zipf rank)."""
    onsets, vowels = ONSETS.split(), VOWELS.split()
    seen: dict[str, None] = {}
    while len(seen) < count:
        syllables = int(rng.integers(1, 4))
        word = "".join(
            onsets[rng.integers(len(onsets))]
            + vowels[rng.integers(len(vowels))]
            + CODAS[rng.integers(len(CODAS))]
            for _ in range(syllables)
        )
        seen.setdefault(word, None)
    return np.array(sorted(seen, key=len), dtype=object)


# --- writing and changing the corpus ----------------------------------------------------


@dataclass
class Corpus:
    """A written corpus folder, the articles held back for +10, and the changes made to it."""

    folder: Path
    articles: int
    extra: list[Doc]
    edit_target: Path
    _added: list[Path] = field(default_factory=list)
    _edited: bytes | None = None
    _more: dict[Path, bytes] = field(default_factory=dict)

    def add_extra(self) -> None:
        """Write the held-back articles, where the next ones in order would go."""
        for i, doc in enumerate(self.extra):
            path = slot(self.folder, self.articles + i, doc.name)
            path.parent.mkdir(exist_ok=True)
            path.write_text(doc.markdown(), encoding="utf-8")
            self._added.append(path)
        age(self._added)

    def edit(self) -> None:
        """Append a sentence to one article."""
        self._edited = self.edit_target.read_bytes()
        with open(self.edit_target, "a", encoding="utf-8") as handle:
            handle.write(f"\n{EDIT_SENTENCE}\n")
        age([self.edit_target])

    def edit_another(self) -> None:
        """Append a sentence to an article not edited yet (the first folder's, in order)."""
        done = {self.edit_target, *self._more}
        path = next(p for p in sorted((self.folder / "part-000").iterdir()) if p not in done)
        self._more[path] = path.read_bytes()
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"\n{EDIT_SENTENCE}\n")
        age([path])

    def revert(self) -> None:
        """Back to the corpus as written, for the next store."""
        for path, data in self._more.items():
            path.write_bytes(data)
        age(list(self._more))
        self._more = {}
        for path in self._added:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only if the +10 started a folder
        self._added = []
        if self._edited is not None:
            self.edit_target.write_bytes(self._edited)
            age([self.edit_target])
            self._edited = None


def slot(folder: Path, number: int, name: str) -> Path:
    return folder / f"part-{number // FILES_PER_FOLDER:03d}" / f"{name}.md"


def age(paths: Sequence[Path]) -> None:
    """Set mtimes a minute back, so that a reindex trusts the files' stats (bench_nochange)."""
    then = time.time_ns() - AGED_SECONDS * 1_000_000_000
    for path in paths:
        os.utime(path, ns=(then, then))


def age_all(folder: Path) -> None:
    age([Path(root, name) for root, _, files in os.walk(folder) for name in files])


def read_docs(path: Path) -> Iterator[Doc]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                r = json.loads(line)
                yield Doc(r["id"], r["title"], r["url"], r["text"])


def copy_of(doc: Doc, copy: int) -> Doc:
    if copy == 0:
        return doc
    text = f"{doc.text}\n\n(Archive copy {copy + 1} of {REAL_COPIES}.)"
    return Doc(f"{doc.name}-copy{copy}", doc.title, f"{doc.url}?copy={copy}", text)


def write_docs(folder: Path, docs: Iterator[Doc], edit_at: int) -> tuple[int, Path]:
    """Write every doc, 1,000 to a folder; how many, and the path of the `edit_at`-th."""
    written, target = 0, None
    for doc in docs:
        path = slot(folder, written, doc.name)
        if written % FILES_PER_FOLDER == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc.markdown(), encoding="utf-8")
        if written == edit_at:
            target = path
        written += 1
    if target is None:
        raise SystemExit(f"only {written} articles written, none to edit")
    age_all(folder)
    return written, target


def write_real(spec: CorpusSpec, articles: Path, folder: Path) -> Corpus:
    total = sum(1 for _ in read_docs(articles))
    keep = min(spec.count or total, total - ADDED_ARTICLES)
    if keep <= 0:
        raise SystemExit(f"{articles} has {total} articles: too few for {spec.label}")

    def base() -> Iterator[Doc]:
        for copy in range(spec.copies):
            for i, doc in enumerate(read_docs(articles)):
                if i >= keep:
                    break
                yield copy_of(doc, copy)

    extra = [d for i, d in enumerate(read_docs(articles)) if keep <= i < keep + ADDED_ARTICLES]
    written, target = write_docs(folder, base(), edit_at=keep // 2)
    return Corpus(folder, written, extra, target)


def write_synthetic(spec: CorpusSpec, seed: int, folder: Path) -> Corpus:
    news = SyntheticNews(seed, stream=0)

    def base() -> Iterator[Doc]:
        number = planned = 0
        while planned < spec.count:
            doc, chunks = news.article(number)
            planned += chunks
            number += 1
            yield doc

    # About the middle article: N chunks make about N / 12.5 articles.
    written, target = write_docs(folder, base(), edit_at=spec.count // sum(CHUNKS_PER_ARTICLE))
    extra = [news.article(written + i)[0] for i in range(ADDED_ARTICLES)]
    return Corpus(folder, written, extra, target)


def write_questions(spec: CorpusSpec, args: argparse.Namespace, path: Path) -> Path:
    """The questions the searches cycle through, one JSON string a line."""
    if spec.synthetic:
        news = SyntheticNews(args.seed, stream=1)
        questions = [news.query() for _ in range(args.queries)]
    else:
        with open(args.questions, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        questions = [str(r["question"]) for r in records if r.get("question")][: args.queries]
    path.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return path


# --- disk, sampled from outside -------------------------------------------------------------


def folder_bytes(folder: Path) -> int:
    """What the files under `folder` take on disk, now; files vanishing meanwhile are skipped."""
    total = 0
    for root, _, files in os.walk(folder):  # an unreadable or vanished folder is skipped
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name), follow_symlinks=False).st_blocks * 512
    return total


class DiskSampler:
    """The peak size of some folders, sampled every 0.2 s while a block runs."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self.folders = folders
        self.peak = dict.fromkeys(folders, 0)
        self.after = dict.fromkeys(folders, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[str, int]:
        sizes = {name: folder_bytes(path) for name, path in self.folders.items()}
        for name, size in sizes.items():
            self.peak[name] = max(self.peak[name], size)
        return sizes

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> DiskSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = self._sample()


# --- the operations, each in a child process -----------------------------------------------


def child_settings(args: argparse.Namespace) -> Any:
    from index.settings import Settings  # the parent never imports the index: see run_child

    return Settings(  # type: ignore[call-arg]  # pydantic-settings' own argument
        _env_file=None,
        corpus_dir=args.corpus,
        index_dir=args.index_dir,
        chroma_host=args.chroma_host,
        chroma_port=args.chroma_port,
        embed_model=FakeEmbedder().name,
    )


def peak_rss() -> dict[str, float]:
    """This process's peak RSS in KiB: VmHWM (its own), and ru_maxrss (inherited across exec)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures: dict[str, float] = {
        "ru_maxrss_kb": usage.ru_maxrss,
        "peak_rss_kb": usage.ru_maxrss,
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
    }
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                figures["peak_rss_kb"] = int(line.split()[1])
    return figures


def child_reindex(args: argparse.Namespace) -> dict[str, Any]:
    from index.build.reindex import reindex

    settings, embedder = child_settings(args), FakeEmbedder()
    profile = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    with profile or contextlib.nullcontext():
        # From nothing, as `newsbot index` on a new folder: no --rebuild needed.
        report = reindex(settings, embedder, rebuild=False)
    seconds = time.perf_counter() - started
    if profile is not None:
        profile.dump_stats(args.profile)
    return {
        "seconds": round(seconds, 3),
        "added": len(report.added),
        "updated": len(report.updated),
        "removed": len(report.removed),
        "unchanged": report.unchanged,
        "chunks_embedded": report.chunks_embedded,
        "chunks_total": report.chunks_total,
    }


def child_query(args: argparse.Namespace) -> dict[str, Any]:
    from index.newsbot import Newsbot

    with open(args.questions, encoding="utf-8") as handle:
        questions = [json.loads(line) for line in handle if line.strip()]
    started = time.perf_counter()
    bot = Newsbot(child_settings(args), FakeEmbedder())
    opened = time.perf_counter() - started
    try:
        status = bot.status()
        for question in questions[:WARMUP_QUERIES]:
            bot.search(question, k=SEARCH_K)
        times = []
        for i in range(args.queries):
            started = time.perf_counter()
            bot.search(questions[i % len(questions)], k=SEARCH_K)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        bot.close()
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {
        "open_seconds": round(opened, 3),
        "queries": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(cuts[94], 1),
        "max_ms": round(max(times), 1),
        "articles": status.articles,
        "chunks": status.chunks,
        "vectors": status.vectors,
    }


def child_main(args: argparse.Namespace) -> int:
    figures = child_query(args) if args.child == "query" else child_reindex(args)
    print(json.dumps({**figures, **peak_rss()}), flush=True)
    return 0


@dataclass
class Target:
    """Where one corpus × store run indexes, and the server it may use."""

    corpus: Corpus
    index_dir: Path
    questions: Path
    server: ChromaServer | None
    profile_dir: Path | None
    label: str

    def folders(self) -> dict[str, Path]:
        found = {"index": self.index_dir}
        if self.server is not None:
            found["server"] = self.server.data_dir
        return found


def run_child(target: Target, op: str, queries: int) -> dict[str, Any]:
    """Run one operation in a child of its own; its figures, with the disk sampled meanwhile.

    The child's peak RSS is read from VmHWM because ru_maxrss carries this process's own over
    exec; this process never imports the index, so that either stays small anyway.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "query" if op == "query" else "reindex",
        "--corpus",
        str(target.corpus.folder),
        "--index-dir",
        str(target.index_dir),
        "--questions",
        str(target.questions),
        "--queries",
        str(queries),
    ]
    if target.server is not None:
        command += ["--chroma-host", target.server.host, "--chroma-port", str(target.server.port)]
    if target.profile_dir is not None and op != "query":
        target.profile_dir.mkdir(parents=True, exist_ok=True)
        name = f"{target.label}-{OP_SLUGS.get(op, op.replace(' ', ''))}.prof"
        command += ["--profile", str(target.profile_dir / name)]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with DiskSampler(target.folders()) as disk:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{target.label} {op}: the child failed (status {done.returncode})")
    figures: dict[str, Any] = json.loads(lines[-1])
    figures["process_seconds"] = round(wall, 3)
    for name in disk.folders:
        figures[f"{name}_bytes_after"] = disk.after[name]
        figures[f"{name}_bytes_peak"] = disk.peak[name]
    return figures


# --- a corpus × store run -------------------------------------------------------------------


def check(op: str, figures: dict[str, Any], before: int) -> list[str]:
    """What is wrong with an operation's report, if anything (then its figures mean little)."""
    got = (figures["added"], figures["updated"], figures["removed"])
    wanted = {"no change": (0, 0, 0), "+10": (ADDED_ARTICLES, 0, 0), "1 edit": (0, 1, 0)}
    problems = []
    if op.startswith("edit ") and got != (0, 1, 0):
        problems.append(f"{op}: added, updated, removed {got}, expected (0, 1, 0)")
    if op in wanted and got != wanted[op]:
        problems.append(f"{op}: added, updated, removed {got}, expected {wanted[op]}")
    if op == "+10" and figures["chunks_total"] <= before:
        problems.append(f"+10: chunks {before} -> {figures['chunks_total']}, expected more")
    return problems


def describe(op: str, f: dict[str, Any]) -> str:
    line = f"  {op}: {f['seconds']:.2f} s (cpu {f['cpu_seconds']:.1f} s), "
    line += f"peak RSS {f['peak_rss_kb'] / 1024:.0f} MB, "
    line += f"index {mb(f['index_bytes_after'])} (peak {mb(f['index_bytes_peak'])})"
    if "server_bytes_after" in f:
        line += f", server {mb(f['server_bytes_after'])} (peak {mb(f['server_bytes_peak'])})"
    return line + f", {f['chunks_total']:,} chunks ({f['chunks_embedded']:,} embedded)"


def build_in_steps(target: Target, steps: int) -> dict[str, Any]:
    """The first index of the corpus built by `steps` reindexes, each adding the next share
    of its folders (as a corpus that grows); the figures of all of them together: time
    summed, peaks the highest."""
    folders = sorted(p for p in target.corpus.folder.iterdir() if p.is_dir())
    held = target.corpus.folder.parent / "held-back"
    held.mkdir(exist_ok=True)
    for folder in folders:
        folder.rename(held / folder.name)
    total: dict[str, Any] = {}
    try:
        for step in range(steps):
            for folder in folders[
                step * len(folders) // steps : (step + 1) * len(folders) // steps
            ]:
                (held / folder.name).rename(folder)
            figures = run_child(target, "full", 0)
            print(f"  step {step + 1} of {steps}: " + describe("full", figures).strip(), flush=True)
            for key, value in figures.items():
                if key.startswith(
                    ("seconds", "cpu_seconds", "process_seconds", "chunks_emb", "added")
                ):
                    total[key] = round(total.get(key, 0) + value, 3)
                elif "peak" in key and isinstance(value, int | float):
                    total[key] = max(total.get(key, 0), value)
                else:
                    total[key] = value
    finally:
        for folder in folders:
            if (held / folder.name).exists():
                (held / folder.name).rename(folder)
        held.rmdir()
    total["steps"] = steps
    return total


def measure(
    target: Target,
    corpus: str,
    store: str,
    queries: int,
    rounds: int = 0,
    build_steps: int = 1,
) -> dict[str, Any]:
    """Full index (in `build_steps` reindexes), searches, then the no-change, +10 and 1-edit
    reindexes (and `rounds` more single edits, each reindexed, then the searches again); one
    table row."""
    print(f"{corpus}, {store} store:", flush=True)
    row: dict[str, Any] = {"corpus": corpus, "store": store, "ops": {}}
    row["articles"] = target.corpus.articles
    problems: list[str] = []
    chunks = 0
    steps = [
        ("full", None),
        ("query", None),
        ("no change", None),
        ("+10", target.corpus.add_extra),
        ("1 edit", target.corpus.edit),
        *[(f"edit {i + 2}", target.corpus.edit_another) for i in range(rounds)],
        *([("query after", None)] if rounds else []),
    ]
    try:
        for op, change in steps:
            if change is not None:
                change()
            if op == "full" and build_steps > 1:
                figures = build_in_steps(target, build_steps)
            else:
                figures = run_child(target, "query" if op == "query after" else op, queries)
            if op.startswith("query"):
                row[op] = figures
                print(
                    f"  {op}: open {figures['open_seconds']:.2f} s, p50 {figures['p50_ms']} ms, "
                    f"p95 {figures['p95_ms']} ms over {figures['queries']}, "
                    f"reader RSS {figures['peak_rss_kb'] / 1024:.0f} MB",
                    flush=True,
                )
                continue
            row["ops"][op] = figures
            print(describe(op, figures), flush=True)
            problems += check(op, figures, chunks)
            chunks = figures["chunks_total"]
    finally:
        target.corpus.revert()
    row["chunks"] = row["ops"]["full"]["chunks_total"]
    row["problems"] = problems
    for problem in problems:
        print(f"  WARNING {problem}", flush=True)
    return row


def run_store(
    spec: CorpusSpec,
    corpus: Corpus,
    questions: Path,
    store: str,
    where: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One corpus × store row: a fresh index folder, and for the server store a fresh server."""
    with contextlib.ExitStack() as stack:
        server = None
        if store == "server":
            server = ChromaServer(where / "chroma-server")
            server.start()
            stack.callback(server.stop)
        label = f"{spec.slug}-{store}"
        target = Target(corpus, where / "index", questions, server, args.profile, label)
        return measure(target, spec.label, store, args.queries, args.rounds, args.build_steps)


# --- the table -----------------------------------------------------------------------------


def mb(n: int) -> str:
    return f"{n / MB:,.0f} MB"


def disk_cell(f: dict[str, Any]) -> str:
    cell = f"{mb(f['index_bytes_after'])} / {mb(f['index_bytes_peak'])}"
    if "server_bytes_after" in f:
        cell += f" + server {mb(f['server_bytes_after'])} / {mb(f['server_bytes_peak'])}"
    return cell


TABLE_HEADER = (
    "| corpus | store | chunks | full | no change | +10 | 1 edit "
    "| disk after / peak during +10 | reindex peak RSS (+10) | query p50 / p95 | reader RSS |"
)


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
    if any("query after" in row for row in rows):
        lines[0] += " later edits: median / max | query p50 / p95 after |"
        lines[1] += "---|---|"
    for row in rows:
        ops, query = row["ops"], row["query"]
        seconds = [f"{ops[op]['seconds']:.1f} s" for op in ("full", "no change", "+10", "1 edit")]
        cells = [
            row["corpus"],
            row["store"],
            f"{row['chunks']:,}",
            *seconds,
            disk_cell(ops["+10"]),
            f"{ops['+10']['peak_rss_kb'] / 1024:,.0f} MB",
            f"{query['p50_ms']:.0f} / {query['p95_ms']:.0f} ms",
            f"{query['peak_rss_kb'] / 1024:,.0f} MB",
        ]
        if "query after" in row:
            later = [f["seconds"] for op, f in ops.items() if op.startswith("edit ")]
            after = row["query after"]
            cells += [
                f"{statistics.median(later):.1f} / {max(later):.1f} s ({len(later)})",
                f"{after['p50_ms']:.0f} / {after['p95_ms']:.0f} ms",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


# --- the command ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,8655,x4", help="comma list: N, x4, synthetic:N")
    parser.add_argument(
        "--stores", default="embedded,server", help="comma list of: " + ", ".join(STORES)
    )
    parser.add_argument("--articles", type=Path, default=DEFAULT_ARTICLES)
    parser.add_argument(
        "--questions", type=Path, default=None, help="default: questions.jsonl beside --articles"
    )
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES, help="searches timed")
    parser.add_argument("--seed", type=int, default=0, help="of the synthetic corpus")
    parser.add_argument(
        "--build-steps",
        type=int,
        default=1,
        help="build the first index in this many reindexes, each adding a share of the corpus",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="more single edits after the first, each reindexed, then the searches again",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and indexes")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows there")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile each reindex here")
    # One operation, run by the benchmark itself in a child process.
    hidden = argparse.SUPPRESS
    parser.add_argument("--child", choices=("reindex", "query"), default=None, help=hidden)
    parser.add_argument("--corpus", type=Path, help=hidden)
    parser.add_argument("--index-dir", type=Path, help=hidden)
    parser.add_argument("--chroma-host", default=None, help=hidden)
    parser.add_argument("--chroma-port", type=int, default=8000, help=hidden)
    args = parser.parse_args(argv)
    if args.child is None:
        args.specs = [CorpusSpec.parse(s) for s in args.sizes.split(",") if s.strip()]
        args.store_list = [s.strip() for s in args.stores.split(",") if s.strip()]
        unknown = set(args.store_list) - set(STORES)
        if unknown:
            parser.error(f"--stores: unknown {', '.join(sorted(unknown))}")
        args.questions = args.questions or args.articles.parent / "questions.jsonl"
        if not all(spec.synthetic for spec in args.specs):
            for path in (args.articles, args.questions):
                if not path.is_file():
                    parser.error(f"no {path}: give --articles (and --questions)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    version = commit()
    print(f"commit {version}; {os.cpu_count()} cores; work in {workdir}", flush=True)
    rows = []
    try:
        for spec in args.specs:
            where = workdir / spec.slug
            shutil.rmtree(where, ignore_errors=True)
            started = time.perf_counter()
            if spec.synthetic:
                corpus = write_synthetic(spec, args.seed, where / "corpus")
            else:
                corpus = write_real(spec, args.articles, where / "corpus")
            questions = write_questions(spec, args, where / "questions.jsonl")
            print(
                f"{spec.label}: wrote {corpus.articles:,} articles, "
                f"{mb(folder_bytes(corpus.folder))}, in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            for store in args.store_list:
                rows.append(run_store(spec, corpus, questions, store, where / store, args))
            if not args.keep:
                shutil.rmtree(where, ignore_errors=True)
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        elif args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nFake model, commit {version}, {os.cpu_count()} cores:\n")
    print(table(rows))
    if args.json is not None:
        meta = {"commit": version, "cores": os.cpu_count(), "sizes": args.sizes}
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return 1 if any(row["problems"] for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())

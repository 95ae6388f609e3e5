"""Killing `newsbot index` at any moment loses nothing.

`newsbot index` runs as a subprocess (the real command line, with the fake model: see
tests/newsbot_fake.py) on a corpus of a few hundred articles, and is killed with SIGKILL at
random points. After each kill, `newsbot ask` still answers from the index in service, which
is exactly as it was; a following full run leaves vectors, BM25 and the article table in
agreement (same ids, no duplicates) and in line with the corpus.

The kill points are random: the seed is in every failure message, and
`NEWSBOT_FAULT_SEED=N` replays one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from index.ingest.corpus.scan import scan_corpus
from index.settings import Settings
from index.store.layout import IndexLayout
from tests.conftest import live_catalog, parts

pytestmark = pytest.mark.integration

NEWSBOT = Path(__file__).resolve().parent / "newsbot_fake.py"
ARTICLES = 300
ROUNDS = 6
EMBED_SECONDS_PER_TEXT = 0.01
GROUP_CHUNKS = 24  # a commit every few articles: many points to be killed between
FILLER = ["budget", "road", "school", "river", "market", "bridge", "tram", "library"]


def town(i: int) -> str:
    """Article `i`'s town: a word no other article has."""
    return "zel" + "".join("bcdfghjklm"[int(d)] for d in str(i)) + "ton"


def amount(i: int, version: int) -> str:
    return f"{100 * version + i} million"


def question(i: int) -> str:
    """A question only article `i` answers: its town's name alone (with the fake model, a
    longer question does not find its article every time)."""
    return town(i)


def write(corpus: Path, i: int, version: int) -> None:
    rng = random.Random(i * 1000 + version)
    filler = [" ".join(rng.choice(FILLER) for _ in range(12)) + "."]
    lead = (
        f"The council of {town(i)} approved {amount(i, version)} dollars for its harbour. "
        "People said the harbour needed it."
    )
    body = "\n\n".join([lead, *filler])
    (corpus / f"n{i:04d}.md").write_text(f"---\ntitle: Council of {town(i)}\n---\n{body}\n")


@dataclass
class Corpus:
    """The corpus folder and the version of each article in it."""

    root: Path
    versions: dict[int, int]
    next_id: int

    def change(self, rng: random.Random, edits: int, removals: int, additions: int) -> list[int]:
        """Edit, remove and add articles; the removed ones."""
        present = sorted(self.versions)
        for i in rng.sample(present, edits):
            self.versions[i] += 1
            write(self.root, i, self.versions[i])
        removed = rng.sample(sorted(set(present)), removals)
        for i in removed:
            (self.root / f"n{i:04d}.md").unlink()
            del self.versions[i]
        for i in range(self.next_id, self.next_id + additions):
            self.versions[i] = 1
            write(self.root, i, 1)
        self.next_id += additions
        return removed


def indexed(settings: Settings) -> tuple[int, dict[str, str]]:
    """The generation in service and its articles (id → content hash)."""
    catalog = live_catalog(settings)
    try:
        hashes = {aid: h for aid, (h, _) in catalog.hashes().items()}
    finally:
        catalog.close()
    return IndexLayout(settings.index_dir).generation(), hashes


def in_corpus(corpus: Path) -> dict[str, str]:
    return {a.id: a.content_hash for a in scan_corpus(corpus).articles}


class Cli:
    def __init__(self, settings: Settings, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {
            **os.environ,
            "NEWSBOT_CORPUS_DIR": str(settings.corpus_dir),
            "NEWSBOT_INDEX_DIR": str(settings.index_dir),
            "FAKE_EMBED_SECONDS": str(EMBED_SECONDS_PER_TEXT),
            "NEWSBOT_GROUP_CHUNKS": str(GROUP_CHUNKS),
        }

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(NEWSBOT), *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(NEWSBOT), *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def ask(self, text: str) -> dict[str, object]:
        done = self.run("ask", "--json", text)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def wait_for_build(process: subprocess.Popen[str], layout: IndexLayout) -> None:
    """Until the run has started building (or ended)."""
    deadline = time.monotonic() + 120
    while process.poll() is None and not layout.building.exists():
        assert time.monotonic() < deadline, "the reindex never started building"
        time.sleep(0.005)


def cited(answer: dict[str, object], article_id: str) -> str:
    """The passage the answer cites from `article_id` ("" if it cites none)."""
    citations = answer["citations"]
    assert isinstance(citations, list), answer
    return next((c["passage"] for c in citations if c["article_id"] == article_id), "")


def test_sigkill_at_random_points_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    seed = int(os.environ.get("NEWSBOT_FAULT_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    why = f"(NEWSBOT_FAULT_SEED={seed})"
    corpus = Corpus(settings.corpus_dir, {}, ARTICLES)
    for i in range(ARTICLES):
        corpus.versions[i] = 1
        write(corpus.root, i, 1)
    cli = Cli(settings, tmp_path)
    layout = IndexLayout(settings.index_dir)
    assert cli.run("index").returncode == 0
    # How long an incremental run builds for: kill points are drawn from that span.
    corpus.change(rng, edits=40, removals=10, additions=20)
    process = cli.start("index")
    wait_for_build(process, layout)
    began = time.monotonic()
    assert process.wait(timeout=300) == 0, process.communicate()[1]
    span = time.monotonic() - began

    kills = switched = 0
    for _ in range(ROUNDS):
        before = indexed(settings)
        removed = corpus.change(rng, edits=40, removals=10, additions=20)
        process = cli.start("index")
        wait_for_build(process, layout)
        try:
            process.wait(timeout=rng.uniform(0, span))
            assert process.returncode == 0, f"{process.communicate()[1]} {why}"
            continue  # it finished first: the next round starts from its generation
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.communicate()
        kills += 1

        # The index in service is whole, and answers: the one before the run, or (killed
        # after its switch, while deleting old generations) the complete new one.
        vectors, bm25, catalog = parts(settings)
        assert vectors == bm25 == catalog, why
        now = indexed(settings)
        gone = next(i for i in removed if f"n{i:04d}.md" in before[1])
        passage = cited(cli.ask(question(gone)), f"n{gone:04d}.md")
        if now[0] == before[0]:
            assert now == before, why
            assert town(gone) in passage, why  # only the index in service still has it
        else:
            switched += 1
            assert now[1] == in_corpus(corpus.root), why
            assert passage == "", why

    print(f"killed {kills} of {ROUNDS} runs, {switched} after their switch {why}")
    done = cli.run("index")
    assert done.returncode == 0, f"{done.stderr} {why}"
    assert kills - switched >= ROUNDS // 2, f"only {kills - switched} runs killed mid-way {why}"
    articles = indexed(settings)[1]
    assert articles == in_corpus(corpus.root), why
    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog, why
    assert not layout.building.exists(), why
    assert len(layout.numbers()) <= 2, why
    edited = next(i for i, v in sorted(corpus.versions.items()) if v > 1)
    passage = cited(cli.ask(question(edited)), f"n{edited:04d}.md")
    assert amount(edited, corpus.versions[edited]) in passage, why


def test_a_second_reindex_exits_at_once_with_a_clear_line(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = Corpus(settings.corpus_dir, {}, 60)
    for i in range(60):
        corpus.versions[i] = 1
        write(corpus.root, i, 1)
    cli = Cli(settings, tmp_path)
    cli.env["FAKE_EMBED_SECONDS"] = "0.05"  # a few seconds of embedding
    first = cli.start("index")
    wait_for_build(first, IndexLayout(settings.index_dir))

    second = cli.run("index")

    assert first.poll() is None, "the first run was still going"
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"error: another `newsbot index` (pid {first.pid}) is writing {settings.index_dir}: "
        "wait for it to finish"
    ]
    assert first.wait(timeout=300) == 0, first.communicate()[1]
    assert len(indexed(settings)[1]) == 60 + 3  # and the three of the `corpus` fixture

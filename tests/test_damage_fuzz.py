"""Damage a built index at random: every command answers as before or says, in one line, what
is damaged and which command repairs it; that command does, and so does `index --rebuild`.

Issue 30's acceptance. A fixed-seed loop (`NEWSBOT_DAMAGE_SEED` replays another seed,
`NEWSBOT_DAMAGE_CASES` runs more cases) picks any file under the index folder and deletes
it, cuts it short or overwrites its start with random bytes. Then `ask` (every question,
one `--batch`) and `status` must each exit 0 with the same answers as before (never a
silent change) or exit 1 with one line, no traceback, naming `newsbot index` or `newsbot
index --rebuild`; `index` must exit 0 having repaired it (every answer as before), or name
`--rebuild` in one line, which then repairs it. On a second copy of the damaged index,
`newsbot index --rebuild` must too. The commands run in-process (typer's runner, much
faster), and every `SUBPROCESS_EVERY`th case through the real program
(`tests/newsbot_fake.py`).
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app
from tests.conftest import write_article
from tests.fakes import FakeEmbedder
from tests.test_index_damage import town, two_segments

pytestmark = pytest.mark.integration  # other processes, and some 200 commands

NEWSBOT = Path(__file__).resolve().parent / "newsbot_fake.py"
SEED = int(os.environ.get("NEWSBOT_DAMAGE_SEED", "30"))
CASES = int(os.environ.get("NEWSBOT_DAMAGE_CASES", "30"))
SUBPROCESS_EVERY = 6  # cases 0, 6, 12…: through the real program
FIRST, ADDED = 12, 4
QUESTIONS = [town(i) for i in range(FIRST + ADDED)]
KINDS = ("delete", "truncate", "garbage")


@dataclass(frozen=True)
class Outcome:
    """What a command did: its exit status, what it printed, and the one-line error."""

    code: int
    stdout: str
    stderr: str

    def error_line(self, context: str) -> str:
        """The one line of a failed command; the `newsbot …` command it advises."""
        assert self.code == 1, f"{context}: exit {self.code}\n{self.stdout}\n{self.stderr}"
        assert "Traceback" not in self.stderr, f"{context}: {self.stderr}"
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{context}: {self.stderr}"
        commands = [c for c in lines[0].split("`")[1::2] if c.startswith("newsbot ")]
        assert len(commands) == 1, f"{context}: no single command advised: {lines[0]}"
        return commands[0]


Run = Callable[..., Outcome]


def in_process(index_dir: Path) -> Run:
    runner = CliRunner()

    def run(*args: str) -> Outcome:
        result = runner.invoke(app, [*args, "--index-dir", str(index_dir)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{args}: a traceback") from result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return run


def as_program(index_dir: Path) -> Run:
    def run(*args: str) -> Outcome:
        done = subprocess.run(
            [sys.executable, str(NEWSBOT), *args, "--index-dir", str(index_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ.copy(),
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run


def answers(outcome: Outcome) -> list[tuple[bool, str, str]]:
    """Each answer of an `ask --batch` run: found or not, its text, the article cited first."""
    out = []
    for line in outcome.stdout.splitlines():
        data = json.loads(line)
        citations = data["citations"]
        out.append((data["found"], data["answer"], citations[0]["article_id"] if citations else ""))
    return out


def damage(rng: random.Random, index_dir: Path) -> str:
    """Damage one file under `index_dir` at random; what was done."""
    files = sorted(p for p in index_dir.rglob("*") if p.is_file())
    path = rng.choice(files)
    kind = rng.choice(KINDS)
    size = path.stat().st_size
    if kind == "delete":
        path.unlink()
    elif kind == "truncate":
        os.truncate(path, rng.randrange(size) if size else 0)
    else:
        length = rng.randint(1, size) if size else rng.randint(1, 64)
        with open(path, "r+b") as handle:
            handle.write(rng.randbytes(length))
    return f"{kind} {path.relative_to(index_dir)} ({size:,} bytes)"


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder) -> Path:
    """An index of two segments and two generations, one article of the first segment
    dead (edited since); the questions in a batch file. Returns the index folder."""

    def edit_the_first(corpus: Path) -> None:
        text = f"The council of {town(0)} approved a new ferry."
        write_article(corpus, "n0000.md", text, title=town(0))

    settings = two_segments(
        tmp_path, tmp_path / "pristine", fake_embedder, first=FIRST, between=edit_the_first
    )
    batch = tmp_path / "questions.jsonl"
    batch.write_text("".join(json.dumps({"question": q}) + "\n" for q in QUESTIONS))
    monkeypatch.setenv("NEWSBOT_CORPUS_DIR", str(settings.corpus_dir))
    return settings.index_dir


def test_every_command_answers_as_before_or_names_the_damage_and_its_repair(
    built: Path, tmp_path: Path
) -> None:
    batch = str(tmp_path / "questions.jsonl")
    ask = ("ask", "--batch", batch)
    before = answers(in_process(built)(*ask))
    assert sum(found for found, _, _ in before) >= len(QUESTIONS) // 2
    rng = random.Random(SEED)
    seen: set[str] = set()
    for case in range(CASES):
        damaged = tmp_path / f"case-{case}"
        shutil.copytree(built, damaged)
        did = damage(rng, damaged)
        seen.add(did.split()[0])
        second = tmp_path / f"case-{case}-rebuild"
        shutil.copytree(damaged, second)
        context = f"seed {SEED} case {case}: {did}"
        run = as_program(damaged) if case % SUBPROCESS_EVERY == 0 else in_process(damaged)

        advised = set()
        asked = run(*ask)
        if asked.code == 0:
            assert answers(asked) == before, f"{context}: answers changed silently"
        else:
            advised.add(asked.error_line(f"{context}: ask"))
        status = run("status")
        if status.code != 0:
            advised.add(status.error_line(f"{context}: status"))
        assert advised <= {"newsbot index", "newsbot index --rebuild"}, f"{context}: {advised}"

        indexed = run("index")
        if indexed.code == 0:
            assert "newsbot index --rebuild" not in advised, f"{context}: index did it"
        else:  # then what `index` advises repairs it (and what the others advised was that)
            command = indexed.error_line(f"{context}: index")
            assert advised <= {command}, f"{context}: {advised}, then index: {command}"
            repair = run(*shlex.split(command)[1:])
            assert repair.code == 0, f"{context}: {command}: {repair.stderr}"
        assert answers(run(*ask)) == before, f"{context}: not repaired by {advised or 'index'}"
        assert run("status").code == 0, f"{context}: status after the repair"

        rebuild = in_process(second)
        assert rebuild("index", "--rebuild").code == 0, f"{context}: index --rebuild"
        assert answers(rebuild(*ask)) == before, f"{context}: not restored by --rebuild"
        shutil.rmtree(damaged)
        shutil.rmtree(second)
    assert seen == set(KINDS)

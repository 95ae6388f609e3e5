"""The data `python -m index.learn` learns from: folders of an index and its questions.

A folder holds `index/` (made by `newsbot index`) and `questions.jsonl`, or `covered.jsonl`
and `uncovered.jsonl` (questions no indexed article answers, which need no answers). The
model file names each folder under `S/`, the folder holding them, with a fingerprint of its
questions, so that it says what it was made from without naming this machine's paths.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import NewsbotError
from index.evaluation.report import EvalQuestion, read_questions
from index.models.embeddings import load_embedder
from index.settings import Settings

QUESTION_FILES = ("questions.jsonl", "covered.jsonl", "uncovered.jsonl")
DATA_FLAGS = ("--train", "--calibrate", "--choose")
DATA_ROOT = "S"  # how the model file names the folder holding the data folders


@dataclass(frozen=True)
class QuestionSet:
    """A folder's index and its covered and uncovered questions."""

    folder: Path
    covered: list[EvalQuestion]
    uncovered: list[EvalQuestion]

    @classmethod
    def read(cls, folder: Path) -> QuestionSet:
        """Raises NewsbotError when the folder holds no index or no questions."""
        if not (folder / "index").is_dir():
            raise NewsbotError(f"{folder} has no index/ folder")
        files = [folder / name for name in QUESTION_FILES[:2]]
        covered = [q for f in files if f.exists() for q in read_questions(f)]
        uncovered_file = folder / QUESTION_FILES[2]
        uncovered = (
            read_questions(uncovered_file, need_answers=False) if uncovered_file.exists() else []
        )
        if not covered and not uncovered:
            raise NewsbotError(f"{folder} has no questions.jsonl, covered.jsonl or uncovered.jsonl")
        return cls(folder, covered, uncovered)

    def describe(self, root: Path) -> dict[str, Any]:
        """What the model file records of this set: its folder under `S/` (see `as_data`), and
        a fingerprint of its questions, so a set made again can be checked to be the same."""
        digest = hashlib.sha256()
        for name in QUESTION_FILES:
            if (self.folder / name).exists():
                digest.update((self.folder / name).read_bytes())
        return {
            "folder": as_data(self.folder, root),
            "questions_sha256": digest.hexdigest(),
            "covered": len(self.covered),
            "uncovered": len(self.uncovered),
        }


class _Unused:
    """The answer step of the indexes opened here: only their search is used."""

    def compose(
        self,
        question: str,
        hits: Sequence[Any],
        *,
        limit: int | None = None,
        asked_on: str | None = None,
    ) -> Any:
        raise NotImplementedError


@functools.cache
def open_index(folder: Path) -> Any:
    """The index in `folder`/index, opened once however many sets share it."""
    from index.newsbot import Newsbot

    settings = Settings().overridden(index_dir=folder / "index")
    return Newsbot(settings, load_embedder(settings, purpose="query"), answerer=_Unused())


def data_root(folders: Sequence[Path]) -> Path:
    """The folder that holds the data folders (`S` in docs/evaluation.md's commands)."""
    return Path(os.path.commonpath([folder.resolve().parent for folder in folders]))


def as_data(path: Path, root: Path) -> str:
    """`path` as the model file records it: under `S/` (the data folders' own folder, which no
    clone has), so the file says what it was made from without naming this machine's paths."""
    try:
        return f"{DATA_ROOT}/{path.resolve().relative_to(root).as_posix()}"
    except ValueError:
        return path.name


def recorded_command(given: Sequence[str], root: Path) -> str:
    """The command line, its data folders written under `S/`; `--out` as given."""
    args, data = [], False
    for arg in given:
        if arg.startswith("-"):
            data = arg in DATA_FLAGS
            args.append(arg)
        else:
            args.append(as_data(Path(arg), root) if data else arg)
    return shlex.join(["python", "-m", "index.learn", *args])

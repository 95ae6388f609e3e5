"""Learn the answer model from questions with known answers: `python -m index.learn`.

Three sets of questions, each a folder holding an index (`index/`) and its questions
(`questions.jsonl`, or `covered.jsonl` and `uncovered.jsonl` as
`benchmarks/eval_uncovered.py` writes them; uncovered questions are ones no indexed article
answers):

1. `--train`: every sentence of each question's best passages, labelled by whether it holds
   an answer string, trains the `sentence` regression (scikit-learn; each question weighs
   the same however many sentences its passages have).
2. `--calibrate` (default: the train set): each question's chosen sentence, labelled by
   whether the answer quoted from it is right, trains the `answer` regression. Uncovered
   questions teach it what "nothing here answers" looks like. Each question is asked twice:
   of the whole index, and of a small corpus of its gold articles and the few others it
   retrieves first (a team's own handful of articles, where fewer passages agree).
3. `--choose` (default: the calibrate set): the threshold below which newsbot says "not
   covered": the highest that keeps `--keep-right` (95%) of the answers it gets right
   there (asked of every kind of corpus), turning away as many questions no article
   answers as that allows. At `--answer-above` (0.5: the model rates a right answer
   likelier than a wrong one) and over, an answer; between the two, a hedge.

    python -m index.learn --train TRAIN --calibrate TRAIN_UNCOVERED --choose CHOOSE \\
        --out index/answer/answer_model.json

The model file records the command, the data, the date and the code's commit.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.answer.answer_model import ANSWER_FEATURES, AnswerModel, Logistic
from index.answer.extractive import ExtractiveAnswerer
from index.answer.features import FEATURES, Describer
from index.errors import NewsbotError
from index.evaluation.report import EvalQuestion, answer_pattern, read_questions
from index.models.embeddings import load_embedder
from index.search.retrieval import Filters
from index.settings import Settings

PASSAGES = 3  # sentences of the best this many passages are described
SMALL_CORPUS = 5  # articles besides the gold ones in the small corpus a question is asked of
ANSWER_ABOVE = 0.5  # answer when the model rates a right answer likelier than a wrong one
KEEP_RIGHT = 0.95  # the share of the choose set's right answers kept above "not covered"
QUESTION_FILES = ("questions.jsonl", "covered.jsonl", "uncovered.jsonl")
DATA_FLAGS = ("--train", "--calibrate", "--choose")
DATA_ROOT = "S"  # how the model file names the folder holding the data folders
SKLEARN_MISSING = "python -m index.learn needs scikit-learn, an extra: pip install 'newsbot[learn]'"


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
        uncovered = read_questions(uncovered_file) if uncovered_file.exists() else []
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


@dataclass(frozen=True)
class Examples:
    """Feature rows, their labels, and each row's question (an index into the questions)."""

    rows: np.ndarray
    labels: np.ndarray
    question: np.ndarray

    @property
    def questions(self) -> int:
        return len(set(self.question.tolist()))


@dataclass(frozen=True)
class Outcome:
    """An answer on the choose set: how confident, and whether it would have been right."""

    confidence: float
    correct: bool  # the answer text holds an answer string
    covered: bool  # an indexed article answers the question


def sentence_examples(bot: Any, questions: Sequence[EvalQuestion], passages: int) -> Examples:
    """Every described sentence of every question's passages, labelled."""
    describer = Describer(passages=passages)
    rows, labels, owner = [], [], []
    for n, question in enumerate(questions):
        pattern = answer_pattern(question.answers)
        if pattern is None:
            continue
        hits = bot.search(question.question, k=passages, asked_on=question.date)
        described = describer.describe(question.question, hits)
        for sentence, row in zip(described.sentences, described.features, strict=True):
            rows.append(row)
            labels.append(pattern.search(sentence.text) is not None)
            owner.append(n)
    return Examples(
        np.array(rows).reshape(-1, len(FEATURES)), np.array(labels, dtype=bool), np.array(owner)
    )


def corpora(
    bot: Any, question: EvalQuestion, passages: int, elsewhere: EvalQuestion | None = None
) -> list[tuple[list[Any], bool]]:
    """The question's best passages in several corpora, each with whether the question may
    be answered there: the whole index; its gold articles with the `SMALL_CORPUS` others it
    retrieves first, and with the first one only (a team's own few articles give less
    agreement and fewer passages to choose from than a year of news); and, if `elsewhere`
    (another question) is given, the `SMALL_CORPUS` articles that one retrieves first: a
    small corpus about something else, which cannot answer it."""
    wide = bot.search(question.question, k=10, asked_on=question.date)
    others = list(dict.fromkeys(h.passage.article.id for h in wide))
    subsets = [frozenset({*question.gold_article_ids, *others[:n]}) for n in (SMALL_CORPUS, 1)]
    found = [(wide[:passages], True)]
    found += [(_within(bot, question, passages, subset), True) for subset in subsets]
    if elsewhere is not None:
        theirs = bot.search(elsewhere.question, k=10, asked_on=elsewhere.date)
        unrelated = list(dict.fromkeys(h.passage.article.id for h in theirs))[:SMALL_CORPUS]
        mine = {*question.gold_article_ids, *others}
        subset = frozenset(a for a in unrelated if a not in mine)
        if subset:
            found.append((_within(bot, question, passages, subset), False))
    return found


def _asked(
    bot: Any, questions: QuestionSet, passages: int
) -> Iterator[tuple[EvalQuestion, bool, list[Any]]]:
    """Each question with the passages of every corpus it is asked of (`corpora`), and
    whether an article there may answer it."""
    every = [*questions.covered, *questions.uncovered]
    for n, question in enumerate(every):
        covered = n < len(questions.covered)
        for hits, answerable in corpora(bot, question, passages, _elsewhere(every, n)):
            yield question, covered and answerable, hits


def _within(bot: Any, question: EvalQuestion, passages: int, articles: frozenset[str]) -> Any:
    only = Filters(article_ids=articles)
    return bot.search(question.question, k=passages, filters=only, asked_on=question.date)


def _elsewhere(questions: Sequence[EvalQuestion], n: int) -> EvalQuestion | None:
    """Another question than the n-th: the one half the list away."""
    return questions[(n + len(questions) // 2) % len(questions)] if len(questions) > 1 else None


def answer_examples(bot: Any, model: AnswerModel, questions: QuestionSet) -> Examples:
    """Each question's chosen sentence as the `answer` model sees it, labelled by whether the
    answer quoted from it holds an answer string (never, for an uncovered question); asked
    of the whole index and of a small corpus (`corpora`)."""
    answerer = ExtractiveAnswerer(model=_always(model))
    rows, labels = [], []  # the answer model's rows, and whether each answer was right
    for question, _, hits in _asked(bot, questions, model.passages):
        choice = answerer.choose(question.question, hits)
        if choice is None:
            continue
        answer = answerer.compose(question.question, hits)
        rows.append(choice.row)
        labels.append(_holds(answer_pattern(question.answers), answer.answer))
    matrix = np.array(rows).reshape(-1, len(ANSWER_FEATURES))
    return Examples(matrix, np.array(labels, dtype=bool), np.arange(len(rows)))


def fit(examples: Examples, features: tuple[str, ...], *, c: float) -> Logistic:
    """A logistic regression on standardised features; each question weighs the same."""
    from sklearn.linear_model import LogisticRegression

    if examples.labels.all() or not examples.labels.any():
        raise NewsbotError("learning needs examples of both right and wrong answers")
    mean = examples.rows.mean(axis=0)
    scale = examples.rows.std(axis=0)
    scale[scale == 0] = 1.0
    _, inverse, counts = np.unique(examples.question, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    regression = LogisticRegression(C=c, max_iter=5000)
    regression.fit((examples.rows - mean) / scale, examples.labels, sample_weight=weights)
    return Logistic(
        features=features,
        mean=mean,
        scale=scale,
        coef=regression.coef_[0].astype(np.float64),
        intercept=float(regression.intercept_[0]),
    )


def outcomes(bot: Any, model: AnswerModel, questions: QuestionSet) -> list[Outcome]:
    """What the model answers to each question if it always answers, of the whole index and
    of a small corpus (`corpora`)."""
    answerer = ExtractiveAnswerer(model=model)
    always = ExtractiveAnswerer(model=replace(model, answer_above=0.0, hedge_above=0.0))
    found = []
    for question, answerable, hits in _asked(bot, questions, model.passages):
        choice = answerer.choose(question.question, hits)
        answer = always.compose(question.question, hits)
        found.append(
            Outcome(
                confidence=choice.confidence if choice else 0.0,
                correct=answer.found and _holds(answer_pattern(question.answers), answer.answer),
                covered=answerable,
            )
        )
    return found


def _holds(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is not None and pattern.search(text) is not None


def thresholds(
    found: Sequence[Outcome], *, answer_above: float = ANSWER_ABOVE, keep_right: float = KEEP_RIGHT
) -> tuple[float, float]:
    """(answer_above, hedge_above) for the outcomes of the choose set.

    "Not covered" below the highest confidence that still keeps `keep_right` of the choose
    set's right answers (covered questions the answer step answers right): as many
    uncovered questions as can be turned away at that cost. At or above `answer_above`, an
    answer; between, a hedge.
    """
    right = sorted(o.confidence for o in found if o.covered and o.correct)
    may_lose = int(len(right) * (1.0 - keep_right))
    hedge_above = right[may_lose] if right else 0.0
    return max(answer_above, hedge_above), hedge_above


# An `answer` part sure of every answer (p = 1 / (1 + e^-10)), until the real one is learned.
_SURE = Logistic(
    ANSWER_FEATURES,
    np.zeros(len(ANSWER_FEATURES)),
    np.ones(len(ANSWER_FEATURES)),
    np.zeros(len(ANSWER_FEATURES)),
    10.0,
)


def _always(model: AnswerModel) -> AnswerModel:
    """`model` answering every question."""
    return replace(model, answer=_SURE, answer_above=0.0, hedge_above=0.0)


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
def _open(folder: Path) -> Any:
    """The index in `folder`/index, opened once however many sets share it."""
    from index.newsbot import Newsbot

    settings = Settings().overridden(index_dir=folder / "index")
    return Newsbot(settings, load_embedder(settings, purpose="query"), answerer=_Unused())


def _commit() -> str | None:
    """The code's commit, "+changes" if files differ from it; None outside a git checkout."""
    here = Path(__file__).parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!*.json")
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}+changes" if changed else commit or None


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
    args = list(given)
    for i, arg in enumerate(args[:-1]):
        if arg in DATA_FLAGS:
            args[i + 1] = as_data(Path(args[i + 1]), root)
    return shlex.join(["python", "-m", "index.learn", *args])


def learn(args: argparse.Namespace) -> tuple[AnswerModel, dict[str, Any]]:
    """The model the arguments ask for, and what it was learned from."""
    train = QuestionSet.read(args.train)
    calibrate = QuestionSet.read(args.calibrate) if args.calibrate else train
    choose = QuestionSet.read(args.choose) if args.choose else calibrate
    examples = sentence_examples(_open(train.folder), train.covered, args.passages)
    placeholder = AnswerModel(fit(examples, FEATURES, c=args.c), _SURE, 0.0, 0.0, args.passages)
    judged = answer_examples(_open(calibrate.folder), placeholder, calibrate)
    model = replace(placeholder, answer=fit(judged, ANSWER_FEATURES, c=args.c))
    found = outcomes(_open(choose.folder), model, choose)
    answer_above, hedge_above = thresholds(
        found, answer_above=args.answer_above, keep_right=args.keep_right
    )
    root = data_root([train.folder, calibrate.folder, choose.folder])
    data = {
        "train": {
            **train.describe(root),
            "sentences": len(examples.labels),
            "answer_sentences": int(examples.labels.sum()),
        },
        "calibrate": {**calibrate.describe(root), "right_answers": int(judged.labels.sum())},
        "choose": choose.describe(root),
    }
    return replace(model, answer_above=answer_above, hedge_above=hedge_above), data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m index.learn", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--train", type=Path, required=True, help="folder: index/ + questions")
    parser.add_argument("--calibrate", type=Path, help="folder (default: --train)")
    parser.add_argument("--choose", type=Path, help="folder (default: --calibrate)")
    parser.add_argument("--out", type=Path, required=True, help="the model file to write")
    parser.add_argument("--passages", type=int, default=PASSAGES, help="passages described (5)")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation (1.0)")
    parser.add_argument(
        "--answer-above", type=float, default=ANSWER_ABOVE, help="answer at this confidence (0.5)"
    )
    parser.add_argument(
        "--keep-right",
        type=float,
        default=KEEP_RIGHT,
        help="share of the choose set's right answers kept above 'not covered' (0.95)",
    )
    given = list(argv if argv is not None else sys.argv[1:])
    args = parser.parse_args(given)
    if importlib.util.find_spec("sklearn") is None:  # answering never needs it: an extra
        print(f"error: {SKLEARN_MISSING}", file=sys.stderr)
        return 1
    try:
        model, data = learn(args)
    except NewsbotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    made = {
        "command": recorded_command(
            given, data_root([p for p in (args.train, args.calibrate, args.choose) if p])
        ),
        "data": f"{DATA_ROOT}/: the folder of data folders, made as docs/evaluation.md shows",
        "date": datetime.now(UTC).date().isoformat(),
        "commit": _commit(),
        **data,
        "method": "scikit-learn LogisticRegression on standardised rows of index.answer.features "
        f"(sentence) and ANSWER_FEATURES (answer), C={args.c}, each question weighing the "
        f"same; answer at {args.answer_above}; not covered below the confidence keeping "
        f"{args.keep_right} of the choose set's right answers",
    }
    model = replace(model, made=made)
    model.save(args.out)
    print(
        f"{args.out}: answer at {model.answer_above:.3f}, hedge at {model.hedge_above:.3f}; {data}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

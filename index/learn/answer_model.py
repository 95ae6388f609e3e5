"""Learn the answer model from questions with known answers: `python -m index.learn`.

Three roles, each one or more folders holding an index (`index/`) and its questions
(`questions.jsonl`, or `covered.jsonl` and `uncovered.jsonl` as
`benchmarks/eval_uncovered.py` writes them; uncovered questions are ones no indexed article
answers):

1. `--train`: every sentence of each question's best passages, labelled by whether it holds
   an answer string, trains the `sentence` regression (scikit-learn; each question weighs
   the same however many sentences its passages have). With `--reader`, the reader's score
   of each sentence is among its features (`READER_FEATURES`), and the model file names the
   reader, which then reads at answer time too.
2. `--calibrate` (default: the train sets): each question's chosen sentence, labelled by
   whether the answer quoted from it is right, trains the `answer` regression. Uncovered
   questions teach it what "nothing here answers" looks like. Each question is asked of the
   whole index, of small corpora of its gold articles and the few others it retrieves
   first (a team's own handful of articles, where fewer passages agree), and of a small
   corpus about another question, which cannot answer it.
3. `--choose` (default: the calibrate sets): the threshold below which newsbot says "not
   covered": the highest that keeps `--keep-right` (95%) of the answers it gets right
   there (asked of every kind of corpus), turning away as many questions no article
   answers as that allows. At `--answer-above` (2/3: a confidently wrong answer costs twice
   what a right one gains) and over, an answer; between the two, a hedge.

    python -m index.learn --train TRAIN --calibrate CALIBRATE UNCOVERED --choose CHOOSE \
        --reader shipped --out index/answer/answer_model.json

The model file records the command, the data, the date and the code's commit.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.answer.answer_model import AnswerModel, Logistic
from index.answer.extractive import ExtractiveAnswerer, _read_as
from index.answer.features import FEATURES, Describer, screened, with_reader
from index.errors import NewsbotError
from index.evaluation.report import EvalQuestion, answer_pattern
from index.learn.question_sets import (
    DATA_ROOT,
    QuestionSet,
    data_root,
    open_index,
    recorded_command,
)
from index.learn.reader import WRONG_COSTS, code_commit
from index.models.reader import Reader, load_reader, reader_directory
from index.search.retrieval import Filters

PASSAGES = 3  # sentences of the best this many passages are described
SMALL_CORPUS = 5  # articles besides the gold ones in the small corpus a question is asked of
# Answer when p - WRONG_COSTS * (1 - p) > 0: a confidently wrong answer costs a team more than
# a hedge (that quotes the same sentence) does.
ANSWER_ABOVE = round(WRONG_COSTS / (1.0 + WRONG_COSTS), 3)
KEEP_RIGHT = 0.95  # the share of the choose set's right answers kept above "not covered"
READ = 10  # sentences a reader reads, of the ~20 of three passages
RELEVANT_SHARE = 0.75  # of answer sentences, found relevant (quoted beside a hedge's first)
SKLEARN_MISSING = "python -m index.learn needs scikit-learn, an extra: pip install 'newsbot[learn]'"


@dataclass(frozen=True)
class Examples:
    """Feature rows, their labels, and each row's question (an index into the questions)."""

    rows: np.ndarray
    labels: np.ndarray
    question: np.ndarray
    scores: np.ndarray | None = None  # the reader's score of each row's sentence, if read

    @property
    def questions(self) -> int:
        return len(set(self.question.tolist()))


@dataclass(frozen=True)
class Outcome:
    """An answer on the choose set: how confident, and whether it would have been right."""

    confidence: float
    correct: bool  # the answer text holds an answer string
    covered: bool  # an indexed article answers the question


def sentence_examples(
    bot: Any, questions: Sequence[EvalQuestion], passages: int, reader: Reader | None = None
) -> Examples:
    """Every described sentence of every question's passages, labelled; with `reader`, each
    with the reader's score."""
    describer = Describer(passages=passages)
    rows, labels, owner = [], [], []
    scores: list[float] = []
    for n, question in enumerate(questions):
        pattern = answer_pattern(question.answers)
        if pattern is None:
            continue
        hits = bot.search(question.question, k=passages, asked_on=question.date)
        described = describer.describe(question.question, hits)
        if reader is not None and described.sentences:
            texts = [_read_as(described.sentences, s, hits) for s in described.sentences]
            scores.extend(reader.scores(question.question, texts))
        for sentence, row in zip(described.sentences, described.features, strict=True):
            rows.append(row)
            labels.append(pattern.search(sentence.text) is not None)
            owner.append(n)
    return Examples(
        np.array(rows).reshape(-1, len(FEATURES)),
        np.array(labels, dtype=bool),
        np.array(owner),
        np.array(scores) if reader is not None else None,
    )


def screened_examples(examples: Examples, screen: Logistic, read: int) -> Examples:
    """Of each question's sentences, the `read` that `screen` rates best, as a reading model
    sees them: their features and the reader's (`with_reader`)."""
    assert examples.scores is not None
    first = screen.logits(examples.rows)
    rows, keep = [], []
    for question in np.unique(examples.question):
        mine = np.flatnonzero(examples.question == question)
        kept = mine[screened(first[mine], read)]
        rows.append(with_reader(examples.rows[kept], examples.scores[kept]))
        keep.append(kept)
    kept = np.concatenate(keep)
    return Examples(np.vstack(rows), examples.labels[kept], examples.question[kept])


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


def answer_examples(
    bot: Any, model: AnswerModel, questions: QuestionSet, reader: Reader | None = None
) -> Examples:
    """Each question's chosen sentence as the `answer` model sees it, labelled by whether the
    answer quoted from it holds an answer string (never, for an uncovered question); asked
    of the whole index and of a small corpus (`corpora`)."""
    answerer = ExtractiveAnswerer(model=_always(model), reader=reader)
    rows, labels = [], []  # the answer model's rows, and whether each answer was right
    for question, _, hits in _asked(bot, questions, model.passages):
        choice = answerer.choose(question.question, hits)
        if choice is None:
            continue
        answer = answerer.compose(question.question, hits)
        rows.append(choice.row)
        labels.append(_holds(answer_pattern(question.answers), answer.answer))
    matrix = np.array(rows).reshape(-1, len(model.answer_features))
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


def outcomes(
    bot: Any, model: AnswerModel, questions: QuestionSet, reader: Reader | None = None
) -> list[Outcome]:
    """What the model answers to each question if it always answers, of the whole index and
    of a small corpus (`corpora`)."""
    answerer = ExtractiveAnswerer(model=model, reader=reader)
    always = ExtractiveAnswerer(
        model=replace(model, answer_above=0.0, hedge_above=0.0), reader=reader
    )
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


def _sure(features: tuple[str, ...]) -> Logistic:
    """An `answer` part sure of every answer (p = 1 / (1 + e^-10)), until the real one is
    learned."""
    n = len(features)
    return Logistic(features, np.zeros(n), np.ones(n), np.zeros(n), 10.0)


def _always(model: AnswerModel) -> AnswerModel:
    """`model` answering every question."""
    return replace(model, answer=_sure(model.answer_features), answer_above=0.0, hedge_above=0.0)


def learn(args: argparse.Namespace) -> tuple[AnswerModel, dict[str, Any]]:
    """The model the arguments ask for, and what it was learned from."""
    train = [QuestionSet.read(folder) for folder in args.train]
    calibrate = [QuestionSet.read(folder) for folder in args.calibrate] if args.calibrate else train
    choose = [QuestionSet.read(folder) for folder in args.choose] if args.choose else calibrate
    reader = load_reader(reader_directory(args.reader), args.threads) if args.reader else None
    examples = _joined(
        [sentence_examples(open_index(s.folder), s.covered, args.passages, reader) for s in train]
    )
    shape = AnswerModel(_sure(()), _sure(()), 0.0, 0.0, args.passages, reader=args.reader)
    screen = None
    if reader is not None:  # the reader reads what a model of the features alone rates best
        screen = fit(examples, FEATURES, c=args.c)
        examples = screened_examples(examples, screen, args.read)
    placeholder = replace(
        shape,
        sentence=fit(examples, shape.sentence_features, c=args.c),
        answer=_sure(shape.answer_features),
        screen=screen,
        read=args.read if reader is not None else 0,
    )
    judged = _joined(
        [answer_examples(open_index(s.folder), placeholder, s, reader) for s in calibrate]
    )
    model = replace(
        placeholder,
        answer=fit(judged, shape.answer_features, c=args.c),
        relevant_above=relevant_cut(placeholder.sentence, examples),
    )
    found = [o for s in choose for o in outcomes(open_index(s.folder), model, s, reader)]
    answer_above, hedge_above = thresholds(
        found, answer_above=args.answer_above, keep_right=args.keep_right
    )
    root = data_root([s.folder for s in (*train, *calibrate, *choose)])
    data = {
        "train": {
            "sets": [s.describe(root) for s in train],
            "sentences": len(examples.labels),
            "answer_sentences": int(examples.labels.sum()),
        },
        "calibrate": {
            "sets": [s.describe(root) for s in calibrate],
            "right_answers": int(judged.labels.sum()),
        },
        "choose": {"sets": [s.describe(root) for s in choose]},
    }
    return replace(model, answer_above=answer_above, hedge_above=hedge_above), data


def relevant_cut(sentence: Logistic, examples: Examples) -> float:
    """The `sentence` logit that `RELEVANT_SHARE` of the training's answer sentences reach."""
    logits = sentence.logits(examples.rows[examples.labels])
    return float(np.quantile(logits, 1.0 - RELEVANT_SHARE)) if len(logits) else -np.inf


def _joined(parts: Sequence[Examples]) -> Examples:
    """The examples of several sets as one, their questions numbered apart."""
    offset, owners = 0, []
    for part in parts:
        owners.append(part.question + offset)
        offset += int(part.question.max()) + 1 if len(part.question) else 0
    scores = [p.scores for p in parts]
    return Examples(
        np.concatenate([p.rows for p in parts]),
        np.concatenate([p.labels for p in parts]),
        np.concatenate(owners),
        None if any(s is None for s in scores) else np.concatenate(scores),  # type: ignore[arg-type]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m index.learn", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--train", type=Path, nargs="+", required=True, help="folders: index/ + questions"
    )
    parser.add_argument("--calibrate", type=Path, nargs="+", help="folders (default: --train)")
    parser.add_argument("--choose", type=Path, nargs="+", help="folders (default: --calibrate)")
    parser.add_argument(
        "--reader",
        help="read with this reader too (shipped: the one in the package, or a folder); "
        "its scores join the sentences' features",
    )
    parser.add_argument("--threads", type=int, default=2, help="the reader's threads (2)")
    parser.add_argument(
        "--read",
        type=int,
        default=READ,
        help=f"sentences the reader reads: those the features alone rate best ({READ})",
    )
    parser.add_argument("--out", type=Path, required=True, help="the model file to write")
    parser.add_argument(
        "--passages", type=int, default=PASSAGES, help=f"passages described ({PASSAGES})"
    )
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation (1.0)")
    parser.add_argument(
        "--answer-above",
        type=float,
        default=ANSWER_ABOVE,
        help=f"answer at this confidence ({ANSWER_ABOVE:.3f}: where a right answer's gain "
        f"outweighs the risk of a wrong one, which costs {WRONG_COSTS:g} times as much)",
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
            given, data_root([*args.train, *(args.calibrate or []), *(args.choose or [])])
        ),
        "data": f"{DATA_ROOT}/: the folder of data folders, made as docs/evaluation.md shows",
        "date": datetime.now(UTC).date().isoformat(),
        "commit": code_commit(),
        **data,
        "method": "scikit-learn LogisticRegression on standardised rows of index.answer.features "
        f"(sentence{', with the reader' if args.reader else ''}) and the answer features "
        f"(answer), C={args.c}, each question weighing the same; answer at "
        f"{args.answer_above}; not covered below the confidence keeping {args.keep_right} of "
        "the choose set's right answers",
    }
    model = replace(model, made=made)
    model.save(args.out)
    print(
        f"{args.out}: answer at {model.answer_above:.3f}, hedge at {model.hedge_above:.3f}; {data}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

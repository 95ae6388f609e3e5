"""`AnswerModel`: the learned weights that choose the answer sentence and judge it.

Two logistic regressions, made by `python -m index.learn`:
- `sentence`, over the features of `index.answer.features`: how likely a sentence is to hold the
  answer. The likeliest is the one quoted.
- `answer`, over `ANSWER_FEATURES` (that sentence's odds, and how close the passages are
  to the question): how likely the quoted sentence is to be right. It was trained on
  questions the index answers and on questions it cannot, so it also says "nothing here".

The answer is given when `answer` reaches `answer_above`; between `hedge_above` and that,
newsbot says it is unsure and quotes the two closest passages; below, "not covered". The model is
a small JSON file that records how it was made; the one shipped is `index/answer/answer_model.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from index.answer.features import FEATURES, READER_FEATURES
from index.errors import NewsbotError
from index.models.reader import Reader, load_reader, reader_directory

BUNDLED_MODEL = Path(__file__).with_name("answer_model.json")
FORMAT = 2
# What the `answer` part judges the chosen sentence by. Two only: on the calibration
# questions (cross-validated), these two told right answers from wrong ones better than with
# the chosen sentence's own features too (ROC AUC 0.78 against 0.73; docs/tuning.md).
ANSWER_FEATURES = (
    "sentence_logit",  # the `sentence` part's odds for it
    "dense_top",  # the model's best similarity of the question to the passages
)
# ... and, for a model that reads with a reader:
READER_ANSWER_FEATURES = (
    *ANSWER_FEATURES,
    "reader_top",  # the reader's best score of any sentence
    "margin",  # how far the chosen sentence's odds lead the next sentence's
    "has_candidate",  # it holds a name, number or date of the kind the question asks for
    "question_words",  # log(1 + the question's words): quiz questions are long, a team's short
)


@dataclass(frozen=True)
class Logistic:
    """A logistic regression on standardised features."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(0)
        return np.asarray(((rows - self.mean) / self.scale) @ self.coef + self.intercept)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-self.logits(rows))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "features": {
                name: {"weight": float(c), "mean": float(m), "scale": float(s)}
                for name, c, m, s in zip(
                    self.features, self.coef, self.mean, self.scale, strict=True
                )
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], expected: tuple[str, ...]) -> Logistic:
        features = data["features"]
        names = tuple(features)
        if names != expected:
            raise ValueError(f"features {names} are not {expected}")
        return cls(
            features=names,
            mean=np.array([features[n]["mean"] for n in names], dtype=np.float64),
            scale=np.array([features[n]["scale"] for n in names], dtype=np.float64),
            coef=np.array([features[n]["weight"] for n in names], dtype=np.float64),
            intercept=float(data["intercept"]),
        )


@dataclass(frozen=True)
class AnswerModel:
    """Which sentence to quote, whether it answers, and the two decision thresholds."""

    sentence: Logistic
    answer: Logistic
    answer_above: float
    hedge_above: float
    passages: int  # sentences of the best this many passages are described
    made: dict[str, Any] = field(default_factory=dict)  # how: command, data, date, commit
    relevant_above: float | None = None
    """A sentence whose `sentence` logit is this or more bears on the question: only such a
    sentence is quoted beside a hedge's first, or names a further source (None: any)."""
    reader: str | None = None
    """The reader whose scores its features include (`index.models.reader`: `shipped`, the
    one in the package, or a folder), or None for a model of the sentences' features only."""
    screen: Logistic | None = None
    """A reading model's first look, over the sentences' features alone: the reader reads
    only the `read` sentences it rates best (the reader costs most of an answer's time)."""
    read: int = 0

    def load_reader(self, threads: int = 1) -> Reader | None:
        """The reader it reads with (loaded once per process), or None if it reads with none."""
        if not self.reader:
            return None
        return load_reader(reader_directory(self.reader), threads)

    @property
    def sentence_features(self) -> tuple[str, ...]:
        return (*FEATURES, *READER_FEATURES) if self.reader else FEATURES

    @property
    def answer_features(self) -> tuple[str, ...]:
        return READER_ANSWER_FEATURES if self.reader else ANSWER_FEATURES

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "made": self.made,
            "passages": self.passages,
            "reader": self.reader,
            "relevant_above": self.relevant_above,
            "screen": self.screen.to_dict() if self.screen else None,
            "read": self.read,
            "answer_above": self.answer_above,
            "hedge_above": self.hedge_above,
            "sentence": self.sentence.to_dict(),
            "answer": self.answer.to_dict(),
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerModel:
        """The model in `path` (default: the bundled one).

        Raises:
            NewsbotError: the file is missing, not a model, or made for other features.
        """
        path = path or BUNDLED_MODEL
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise NewsbotError(f"cannot read answer model {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise NewsbotError(f"{path} is not an answer model (not JSON: {exc})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise NewsbotError(
                f"{path} is not an answer model of this version: make one with "
                "`python -m index.learn`"
            )
        try:
            reader = data.get("reader")
            if reader is not None and not isinstance(reader, str):
                raise TypeError(f"'reader' is {reader!r}, not a reader's name")
            shape = cls(_EMPTY, _EMPTY, 0.0, 0.0, 0, reader=reader)
            return replace(
                shape,
                sentence=Logistic.from_dict(data["sentence"], shape.sentence_features),
                answer=Logistic.from_dict(data["answer"], shape.answer_features),
                answer_above=float(data["answer_above"]),
                hedge_above=float(data["hedge_above"]),
                passages=int(data["passages"]),
                made=dict(data.get("made") or {}),
                relevant_above=_number_or_none(data.get("relevant_above")),
                screen=Logistic.from_dict(data["screen"], FEATURES) if reader else None,
                read=int(data["read"]) if reader else 0,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NewsbotError(
                f"{path} was made for other features ({exc}): make it again with "
                "`python -m index.learn`"
            ) from exc


def _number_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


_EMPTY = Logistic((), np.zeros(0), np.ones(0), np.zeros(0), 0.0)


def answer_rows(
    logits: np.ndarray,
    dense_top: float,
    reader_scores: np.ndarray | None = None,
    *,
    chosen: np.ndarray | None = None,
    question: str = "",
) -> np.ndarray:
    """The `answer` model's row for the best sentence of `logits`; with `reader_scores` (the
    reader's scores of the same sentences), a reading model's (`READER_ANSWER_FEATURES`):
    `chosen` is the best sentence's row of `FEATURES`, `question` the question."""
    best = float(np.max(logits))
    if reader_scores is None:
        return np.array([[best, dense_top]])
    assert chosen is not None
    read = logits[np.isfinite(logits)]  # sentences not read rank at -inf
    runner_up = float(np.partition(read, -2)[-2]) if len(read) > 1 else best - 10.0
    values = {
        "sentence_logit": best,
        "dense_top": dense_top,
        "reader_top": float(np.max(reader_scores)),
        "margin": best - runner_up,
        "has_candidate": float(chosen[FEATURES.index("has_candidate")]),
        "question_words": float(np.log1p(len(question.split()))),
    }
    return np.array([[values[name] for name in READER_ANSWER_FEATURES]])

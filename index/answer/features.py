"""What the answer step knows of each sentence it could quote, as a row of numbers.

The answer step (which sentence answers, and whether any does) and its training
(`index.learn.answer_model`) both describe sentences with `describe`, so that a model
learned offline sees at run time exactly what it was trained on. Every feature is cheap: the
question's embedding is the only model output used, and the search has already computed it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.ingest.chunks import sentence_spans
from index.records import Hit
from index.search.candidates import AnswerShape, agreement, tally
from index.store.terms import Tokenizer

# Words that shape a question but are never its subject (English stop words, such as "is",
# "the" or "of", are dropped from every text anyway). Plain words: they are dropped before
# stemming.
QUESTION_WORDS = frozenset(
    "how much many mean means meaning what who whom whose which when where why "
    "do does did doing has have had were would can could should".split()
)

# A sentence starting so leans on the one before it ("They have sent...", "However, ...").
LEANING = re.compile(
    r"^\W*(?:they|them|their|it|its|he|his|she|her|these|this|those|that|such|both|"
    r"however|but|also|meanwhile|instead|still|yet|and|so|then|there|here|the latter|"
    r"the former|the move|the decision|the deal|the plan|the bill|the same)\b",
    re.I,
)

# One row per sentence; the order is the model's (a model file lists the names it was
# trained on, and loading it checks them).
BASE_FEATURES = (
    "passage_rank",  # 1 / n for a sentence of the n-th passage
    "passage_score",  # the passage's search score relative to the best passage's
    "dense",  # the model's similarity of the question to the passage (0 if not retrieved so)
    "lexical",  # the passage's BM25 score relative to the best (0 if not retrieved so)
    "lead",  # 1 / n for an article's n-th passage (news puts the facts first)
    "sentence_lead",  # 1 / n for a passage's n-th sentence
    "coverage",  # the share of the question's terms in the sentence
    "rare_coverage",  # ... each term weighted by how few of the passages' sentences hold it
    "passage_coverage",  # ... in its passage
    "title_coverage",  # ... in its article's title
    "has_candidate",  # it holds a candidate answer of the kind the question asks for
    "votes",  # its best candidate's share of the votes of all sentences (agreement)
    "spread",  # the share of the passages that hold that candidate
    "in_titles",  # the share of the passages whose article's title holds it
    "candidates",  # log(1 + the candidate answers it holds)
    "length",  # log(1 + its words)
    "leans",  # it starts with a word leaning on the sentence before ("They", "However")
    "is_question",  # it ends with a question mark
    "names",  # the share of the names the question says (its capitalised words) in the sentence
    "passage_names",  # ... in its passage or its article's title
)
FEATURES = BASE_FEATURES
# A model that reads with a reader (`index.models.reader`) describes each sentence by these
# too, after the others.
READER_FEATURES = (
    "reader",  # the reader's score of the sentence, read in its context, for the question
    "reader_lead",  # ... less the best sentence's score (0 for the reader's own choice)
)
_WORD = re.compile(r"\w+")
# A capitalised word that is not a sentence's first: a name ("Boston", "NATO", "Biden").
_INNER_NAME = re.compile(r"(?<=[\w,;:'’\"”)] )[A-Z][\w'’.-]*")


@dataclass(frozen=True)
class Sentence:
    """A sentence of a retrieved passage, and the candidate answer in it that most agree on."""

    hit_index: int
    order: int  # its place in the passage, from 0
    start: int  # in the passage's text
    end: int
    text: str
    answer: tuple[int, int] | None = None  # the candidate answer's span, in the passage's text
    candidate: str | None = None  # that candidate, as `AnswerShape` words it
    candidates: frozenset[str] = frozenset()  # every candidate answer it holds

    @property
    def leans(self) -> bool:
        return LEANING.match(self.text) is not None


@dataclass(frozen=True)
class Described:
    """The sentences of the best passages and their features (one row each)."""

    sentences: list[Sentence]
    features: np.ndarray  # shape (len(sentences), len(FEATURES))
    kind: str = "any"  # what the question asks for (`AnswerShape.kind`)


class Describer:
    """Describes the sentences of the best `passages` retrieved passages.

    A sentence votes for the candidate answers it holds with its share of the question's
    terms plus `rank_bonus` / n for the n-th passage (the hand-set answer step's sentence
    score, kept as the votes' weight; docs/tuning.md).
    """

    def __init__(self, passages: int = 3, rank_bonus: float = 0.04) -> None:
        self.passages = passages
        self.rank_bonus = rank_bonus
        self._question_terms = Tokenizer(extra_stopwords=QUESTION_WORDS)
        self._terms = Tokenizer()

    def question_terms(self, question: str) -> set[str]:
        return set(self._question_terms([question])[0])

    def describe(self, question: str, hits: Sequence[Hit]) -> Described:
        """Every sentence of the best passages of `hits`, with its feature row."""
        hits = hits[: self.passages]
        spans = [
            (i, order, s, e)
            for i, hit in enumerate(hits)
            for order, (s, e) in enumerate(sentence_spans(hit.passage.chunk.text))
        ]
        if not spans:
            return Described([], np.zeros((0, len(FEATURES))))
        texts = [hits[i].passage.chunk.text[s:e] for i, _, s, e in spans]
        wanted = self.question_terms(question)
        titles = [hit.passage.article.title for hit in hits]
        passages = [hit.passage.chunk.text for hit in hits]
        terms = self._terms([*texts, *passages, *titles])
        share = [len(wanted & set(t)) / len(wanted) if wanted else 0.0 for t in terms]
        coverage = share[: len(texts)]
        rare_coverage = _rare_coverage(wanted, [set(t) for t in terms[: len(texts)]])
        passage_coverage = share[len(texts) : len(texts) + len(hits)]
        title_coverage = share[len(texts) + len(hits) :]

        shape = AnswerShape(question)
        found = [shape.spans(text) for text in texts]
        weights = [
            c + self.rank_bonus / (i + 1) for c, (i, *_) in zip(coverage, spans, strict=True)
        ]
        held = [{key for *_, key in f} for f in found]
        votes = agreement(held, weights)
        tallied = tally(held, weights)

        sentences = []
        for (i, order, s, e), text, spans_in in zip(spans, texts, found, strict=True):
            # The most voted candidate; of those voted alike, the one of most words (a
            # "Kenyan runner Ruth Chepngetich" is more likely the answer than "Kenyan").
            best = max(spans_in, key=lambda f: (tallied[f[2]], f[2].count(" ")), default=None)
            answer = (s + best[0], s + best[1]) if best else None
            keys = frozenset(key for *_, key in spans_in)
            sentences.append(
                Sentence(i, order, s, e, text, answer, best[2] if best else None, keys)
            )

        names = {n.lower().rstrip(".'’") for n in _INNER_NAME.findall(question)}
        sentence_names = [_share_of(names, text) for text in texts]
        passage_names = [
            _share_of(names, f"{title} {passage}")
            for title, passage in zip(titles, passages, strict=True)
        ]
        held_by: dict[str, set[int]] = {}
        for (i, *_), keys_in in zip(spans, held, strict=True):
            for key in keys_in:
                held_by.setdefault(key, set()).add(i)
        title_words = [{w.lower() for w in _WORD.findall(title)} for title in titles]
        top_score = hits[0].score or 1.0
        top_lexical = max((hit.lexical or 0.0 for hit in hits), default=0.0) or 1.0
        rows = []
        for n, sentence in enumerate(sentences):
            hit = hits[sentence.hit_index]
            has = float(bool(found[n]))
            rows.append(
                [
                    1.0 / (sentence.hit_index + 1),
                    hit.score / top_score,
                    hit.dense or 0.0,
                    (hit.lexical or 0.0) / top_lexical,
                    1.0 / (hit.passage.chunk.ord + 1),
                    1.0 / (sentence.order + 1),
                    coverage[n],
                    rare_coverage[n],
                    passage_coverage[sentence.hit_index],
                    title_coverage[sentence.hit_index],
                    has,
                    votes[n],
                    len(held_by.get(sentence.candidate or "", ())) / len(hits),
                    _in_titles(sentence.candidate, title_words),
                    math.log1p(len(sentence.candidates)),
                    math.log1p(len(_WORD.findall(sentence.text))),
                    float(sentence.leans),
                    float(sentence.text.rstrip("\"'”’)").endswith("?")),
                    sentence_names[n],
                    passage_names[sentence.hit_index],
                ]
            )
        return Described(sentences, np.array(rows, dtype=np.float64), shape.kind)


def with_reader(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """`rows` (one per sentence) with the `READER_FEATURES` of the reader's `scores`."""
    if len(scores) == 0:
        return np.zeros((0, rows.shape[1] + len(READER_FEATURES)))
    return np.column_stack([rows, scores, scores - scores.max()])


def screened(logits: np.ndarray, read: int) -> np.ndarray:
    """The indexes (in order) of the `read` sentences of highest `logits`: those a reader
    reads."""
    if len(logits) <= read:
        return np.arange(len(logits))
    return np.sort(np.argsort(-logits, kind="stable")[:read])


def _in_titles(candidate: str | None, titles: list[set[str]]) -> float:
    """The share of `titles` (as word sets) holding every word of `candidate`."""
    if not candidate:
        return 0.0
    words = set(candidate.split())
    return sum(words <= title for title in titles) / len(titles)


def _rare_coverage(wanted: set[str], sentences: list[set[str]]) -> list[float]:
    """Each sentence's share of the question's terms, a term counting log((n + 1) / (n_t +
    0.5)) for `n` sentences of which `n_t` hold it: the question's rarer words weigh more."""
    n = len(sentences)
    weight = {t: math.log((n + 1) / (sum(t in s for s in sentences) + 0.5)) for t in wanted}
    total = sum(weight.values())
    if total <= 0:
        return [0.0] * n
    return [sum(weight[t] for t in wanted & s) / total for s in sentences]


def _share_of(names: set[str], text: str) -> float:
    """The share of `names` that are words of `text` (1 when there are none)."""
    if not names:
        return 1.0
    words = {w.lower() for w in _WORD.findall(text)}
    return len(names & words) / len(names)

"""The reader's training data, read from the eval folder (`python -m index.learn.reader`):
which questions train and which calibrate, and each question's candidate sentences, cut
into passages as indexing cuts them and read as the answer step reads them."""

from __future__ import annotations

import ast
import gzip
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.evaluation.report import answer_pattern
from index.ingest.chunks import Chunker, sentence_spans
from index.ingest.corpus.article import Article
from index.models.embeddings import bundled_model_path
from index.models.reader import reader_text
from index.settings import Settings

SEED = 13
OTHER_ARTICLES = 4
PASSAGES = 3
MAX_NEGATIVES = 40
DEV_LAST = "2024-02-23"  # rtqa-dev's last question date
CHOOSE_FROM = "2024-10-01"  # rtqa-2024 questions from here on calibrate, never train
NATURAL_HELD_OUT = 100


@dataclass
class Candidate:
    text: str  # `reader_text`
    sentence: str
    article: str
    chunk: int


@dataclass
class Item:
    question: str
    source: str  # natural, rtqa, natural-uncovered, rtqa-uncovered
    answers: list[str]
    gold: list[str]
    positives: list[Candidate] = field(default_factory=list)
    negatives: list[Candidate] = field(default_factory=list)
    pool: list[Candidate] = field(default_factory=list)  # the best passages' sentences


def _date(value: str) -> str:
    return value.replace("/", "-")[:10]


def _list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    try:
        return [str(v) for v in ast.literal_eval(value)]
    except (ValueError, SyntaxError):
        return [str(value)]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def load_articles(eval_dir: Path) -> dict[str, dict[str, Any]]:
    articles: dict[str, dict[str, Any]] = {}
    for split in ("rtqa-train", "rtqa-2024"):
        with gzip.open(eval_dir / split / "articles.jsonl.gz", "rt") as f:
            for line in f:
                d = json.loads(line)
                articles.setdefault(d["id"], d)
    return articles


def load_questions(
    eval_dir: Path, held_out: int = NATURAL_HELD_OUT
) -> tuple[list[Item], list[Item]]:
    """(train, calibrate) questions, split as the module says."""
    train, calibrate, _ = _split(eval_dir, held_out)
    return train, calibrate


def load_uncovered_training(eval_dir: Path) -> list[Item]:
    """The uncovered rtqa-train questions that do not calibrate (the judge trains on them,
    with negatives only)."""
    return _split(eval_dir, NATURAL_HELD_OUT)[2]


UNCOVERED_CALIBRATING = 160


def _split(eval_dir: Path, held_out: int) -> tuple[list[Item], list[Item], list[Item]]:
    rng = random.Random(SEED)
    natural = _jsonl(eval_dir / "natural" / "train-covered.jsonl")
    rng.shuffle(natural)
    held = {d["id"] for d in natural[:held_out]}
    train: list[Item] = []
    calibrate: list[Item] = []
    for d in natural:
        item = Item(d["question"], "natural", list(d["answers"]), [d["article_id"]])
        (calibrate if d["id"] in held else train).append(item)
    for d in _jsonl(eval_dir / "rtqa-train" / "questions.jsonl"):
        train.append(
            Item(d["question"], "rtqa", _list(d["answers"]), _list(d["gold_article_ids"])[:3])
        )
    dev_ids = {d["id"] for d in _jsonl(eval_dir / "rtqa-dev" / "questions.jsonl")}
    for d in _jsonl(eval_dir / "rtqa-2024" / "questions.jsonl"):
        day = _date(d["date"])
        if d["id"] in dev_ids or day <= DEV_LAST:
            continue
        item = Item(d["question"], "rtqa", _list(d["answers"]), _list(d["gold_article_ids"])[:3])
        (calibrate if day >= CHOOSE_FROM else train).append(item)
    for d in _jsonl(eval_dir / "natural" / "train-uncovered.jsonl"):
        calibrate.append(Item(d["question"], "natural-uncovered", [], []))
    unc = _jsonl(eval_dir / "rtqa-train" / "questions-uncovered.jsonl")
    rng.shuffle(unc)
    for d in unc[:UNCOVERED_CALIBRATING]:
        calibrate.append(Item(d["question"], "rtqa-uncovered", _list(d["answers"]), []))
    spare = [
        Item(d["question"], "rtqa-uncovered", _list(d["answers"]), [])
        for d in unc[UNCOVERED_CALIBRATING:]
    ]
    return train, calibrate, spare


class Candidates:
    """Articles as passages and sentences, and BM25 over the articles and over passages."""

    def __init__(self, articles: dict[str, dict[str, Any]]) -> None:
        import bm25s
        from tokenizers import Tokenizer

        self.articles = articles
        self.ids = list(articles)
        tok = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
        tok.no_padding()  # the file pads and truncates to 128: counts must be the text's own
        tok.no_truncation()
        settings = Settings()
        self.chunker = Chunker(
            lambda t: len(tok.encode(t, add_special_tokens=False).ids),
            settings.chunk_tokens,
            settings.chunk_overlap,
        )
        corpus = [_head(articles[i]) for i in self.ids]
        self._bm25s = bm25s
        self.index = bm25s.BM25()
        self.index.index(
            bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False
        )
        self._passages: dict[str, list[list[tuple[str, str]]]] = {}

    def search(self, questions: list[str], k: int) -> list[list[str]]:
        if not questions:
            return []
        k = min(k, len(self.ids))
        res, _ = self.index.retrieve(
            self._bm25s.tokenize(questions, stopwords="en", show_progress=False),
            k=k,
            show_progress=False,
        )
        return [[self.ids[j] for j in row] for row in res]

    def passages(self, article_id: str) -> list[list[tuple[str, str]]]:
        """Each passage of the article as (sentence, reader_text) pairs."""
        if article_id not in self._passages:
            a = self.articles[article_id]
            title = a.get("title") or ""
            article = Article(id=article_id, title=title, text=a.get("text") or "", path=article_id)
            out = []
            for chunk in self.chunker.split(article):
                spans = sentence_spans(chunk.text)
                sents = [chunk.text[s:e] for s, e in spans]
                out.append(
                    [
                        (s, reader_text(s, title, sents[n - 1] if n else ""))
                        for n, s in enumerate(sents)
                        if len(s.split()) >= 4
                    ]
                )
            self._passages[article_id] = out
        return self._passages[article_id]


def _head(article: dict[str, Any]) -> str:
    """What BM25 ranks an article by: its title and first 400 words."""
    words = (article.get("text") or "").split()[:400]
    return f"{article.get('title') or ''} {' '.join(words)}"


def fill(items: list[Item], cands: Candidates, *, pools: bool) -> None:
    """Positives and negatives (and, `pools`, the best passages' sentences) of each item."""
    rng = random.Random(SEED)
    hits = cands.search([it.question for it in items], k=OTHER_ARTICLES + 5)
    for item, ranked in zip(items, hits, strict=True):
        gold = [g for g in item.gold if g in cands.articles]
        item.gold = gold
        if item.source.endswith("uncovered"):
            arts = ranked[:5]
        else:
            arts = gold + [a for a in ranked if a not in gold][:OTHER_ARTICLES]
        pattern = answer_pattern(item.answers)
        seen: set[str] = set()
        passages: list[list[Candidate]] = []
        for aid in arts:
            for n, passage in enumerate(cands.passages(aid)):
                cs = [Candidate(text, s, aid, n) for s, text in passage]
                passages.append(cs)
                for c in cs:
                    if c.sentence in seen:
                        continue
                    seen.add(c.sentence)
                    holds = pattern is not None and pattern.search(c.sentence) is not None
                    if holds and aid in gold:
                        item.positives.append(c)
                    elif not holds:
                        item.negatives.append(c)
        words = _terms(item.question)
        # Quiz answers such as "Idaho" are in many sentences: keep the positives sharing
        # most words with the question, and the negatives sharing most (the hard ones).
        item.positives.sort(key=lambda c: -len(words & _terms(c.sentence)))
        item.positives = item.positives[:2]
        rng.shuffle(item.negatives)
        item.negatives.sort(key=lambda c: -len(words & _terms(c.sentence)))
        item.negatives = item.negatives[:MAX_NEGATIVES]
        if pools:
            item.pool = _best_passages(item.question, passages)


_TERM = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "the a an of to in on for and or is are was were be by with at from as that this it its "
    "what who whom which when where why how much many did does do has have had will would "
    "about after into than over their they he she his her".split()
)


def _terms(text: str) -> set[str]:
    return {w for w in _TERM.findall(text.lower()) if w not in _STOP}


def _best_passages(question: str, passages: list[list[Candidate]]) -> list[Candidate]:
    """The sentences of the `PASSAGES` passages BM25 ranks first among `passages`."""
    passages = [p for p in passages if p]
    if not passages:
        return []
    words = _terms(question)
    docs = [[w for c in p for w in _TERM.findall(c.sentence.lower())] for p in passages]
    n = len(docs)
    avg = sum(map(len, docs)) / n
    df = {w: sum(w in set(d) for d in docs) for w in words}
    scores = []
    for d in docs:
        counts = {w: d.count(w) for w in words}
        s = 0.0
        for w, tf in counts.items():
            if tf:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                s += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(d) / avg))
        scores.append(s)
    best = sorted(range(n), key=lambda i: -scores[i])[:PASSAGES]
    return [c for i in best for c in passages[i]]

"""A generation's segments, searched as one index, and which of them a reindex merges.

A reindex writes what changed as a new segment (its catalog, BM25 and vectors) and shares
the older segments with the generation before, marking what they hold that is no longer
current as dead (`Catalog`, docs/architecture.md "Segments"). Readers search every segment
and leave out the dead: `SegmentedVectors` and `SegmentedLexical` answer as one vector store
and one BM25 index do. To keep their number small, a reindex folds the smallest older
segments (and any mostly dead) into the one it writes: `to_merge`.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.store.catalog import SegmentInfo
from index.store.lexical import LexicalIndex, lucene_idf
from index.store.vectors import VectorStore

# Older segments a generation may share before a reindex merges some: each costs a vector
# query and a BM25 search per question, and SQLite attaches at most 10 databases.
MAX_SEGMENTS = 6
# Older segments a generation may share at most: past this a reindex merges the smallest
# whatever their sizes (SQLite attaches at most 10 databases; a reader, every segment).
MOST_SEGMENTS = 8
# How many of the smallest older segments a merge folds together at most: each chunk is then
# copied about log4(corpus / change) times over the corpus's life, and the segments stay few.
MERGE_WIDTH = 4
# A merge takes the next smallest segment only if it holds at most this many times what the
# smaller ones taken hold (and segments under `SMALL` chunks always), so that a small change
# is not merged into a segment many times its size: big segments are merged with their like.
SIMILAR = 2.0
SMALL = 10_000
# Extra vectors asked of a segment with dead chunks, beyond its share (see `_live_nearest`).
DEAD_MARGIN = 8
# An older segment more than this share dead is folded in (its dead chunks cost every
# question a wider vector query).
MOSTLY_DEAD = 0.5


def to_merge(older: Sequence[SegmentInfo]) -> list[str]:
    """The older segments a reindex folds into the segment it writes.

    The mostly dead always. With `MAX_SEGMENTS` or more, up to `MERGE_WIDTH` of the smallest,
    each next one taken only while it is `SIMILAR` in size to those taken (or `SMALL`); if
    that makes no merge of two, none is made until there are `MOST_SEGMENTS`, and then the
    smallest are merged whatever their sizes.
    """
    chosen = [s.name for s in older if s.chunks and len(s.dead_chunks) > MOSTLY_DEAD * s.chunks]
    rest = sorted(
        (s for s in older if s.name not in chosen),
        key=lambda s: (s.chunks - len(s.dead_chunks), s.name),
    )
    if len(rest) < MAX_SEGMENTS:
        return chosen
    taken: list[SegmentInfo] = []
    held = 0
    for segment in rest[:MERGE_WIDTH]:
        size = segment.chunks - len(segment.dead_chunks)
        if taken and size > max(SIMILAR * held, SMALL):
            break
        taken.append(segment)
        held += size
    if len(taken) < 2:
        if len(rest) < MOST_SEGMENTS:
            return chosen
        taken = rest[:MERGE_WIDTH]
    return chosen + [s.name for s in taken]


@dataclass
class SegmentedVectors:
    """The vector stores of a generation's segments, queried as one."""

    # Each segment's store, its dead chunks, and how many chunks it holds (dead ones too).
    stores: list[tuple[VectorStore, frozenset[str], int]]

    @property
    def location(self) -> str:
        """Where the vectors are: a server, or the folder holding every segment's."""
        places = sorted({store.location for store, _, _ in self.stores})
        if len(places) == 1:
            return places[0]
        return f"{os.path.commonpath(places)} ({len(places)} segments)"

    def count(self) -> int:
        """Vectors of chunks the generation holds."""
        return sum(store.count() - len(dead) for store, dead, _ in self.stores)

    def load(self, dimension: int | None) -> None:
        for store, _, _ in self.stores:
            store.load(dimension)

    def query(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, cosine similarity) pairs, most similar first."""
        if len(self.stores) == 1 and not self.stores[0][1]:
            return self.stores[0][0].query(vector, n)
        found: list[tuple[str, float]] = []
        for store, dead, chunks in self.stores:
            found += _live_nearest(store, dead, chunks, vector, n)
        found.sort(key=lambda hit: -hit[1])
        return found[:n]


def _live_nearest(
    store: VectorStore, dead: frozenset[str], chunks: int, vector: np.ndarray, n: int
) -> list[tuple[str, float]]:
    """The `n` nearest chunks of one segment that are not dead.

    It asks for as many more as its share of dead chunks would take from `n`, and, if dead
    ones still left fewer than `n`, twice as many again, until it has `n` or all: asking for
    all its dead every time would make a question's cost grow with them.
    """
    if not dead or n <= 0:
        return store.query(vector, n)
    ask = min(chunks, n + math.ceil(n * len(dead) / max(chunks - len(dead), 1)) + DEAD_MARGIN)
    while True:
        got = store.query(vector, ask)
        live = [hit for hit in got if hit[0] not in dead]
        if len(live) >= n or len(got) < ask or ask >= chunks:
            return live[:n]
        ask = min(chunks, ask * 2)


@dataclass
class SegmentedLexical:
    """The BM25 indexes of a generation's segments, searched as one.

    Each segment's BM25 was built with its own statistics; a search weighs each query term
    by its inverse document frequency over all segments instead (Lucene's way: document
    frequencies include dead chunks until a merge drops them). The length normalisation
    stays each segment's own: chunks are cut to one size, so their average length differs
    little between segments.
    """

    parts: list[tuple[LexicalIndex, np.ndarray]]  # each segment's BM25 and its dead positions

    @staticmethod
    def of(indexes: Sequence[tuple[LexicalIndex, frozenset[str]]]) -> SegmentedLexical:
        parts = []
        for lexical, dead in indexes:
            ids = lexical.chunk_ids  # in chunk-id order, as they are written
            found = [bisect.bisect_left(ids, cid) for cid in dead]
            positions = [i for i, cid in zip(found, dead, strict=True) if ids[i : i + 1] == [cid]]
            if len(positions) < len(dead):  # written in another order: look at each
                positions = [i for i, cid in enumerate(ids) if cid in dead]
            parts.append((lexical, np.asarray(positions, dtype=np.int64)))
        return SegmentedLexical(parts)

    @property
    def chunk_ids(self) -> list[str]:
        dead_ids = [{lexical.chunk_ids[int(i)] for i in dead} for lexical, dead in self.parts]
        return [
            cid
            for (lexical, _), gone in zip(self.parts, dead_ids, strict=True)
            for cid in lexical.chunk_ids
            if cid not in gone
        ]

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, BM25 score) pairs, best first; only chunks sharing a term."""
        if len(self.parts) == 1 and not len(self.parts[0][1]):
            return self.parts[0][0].search(query, n)
        if n <= 0 or not self.parts:
            return []
        terms = self.parts[0][0].terms(query)
        freqs = [lexical.doc_freqs(terms) for lexical, _ in self.parts]
        # As Lucene: dead chunks count in the number of chunks as in each term's frequency.
        docs = sum(lexical.size for lexical, _ in self.parts)
        total: dict[str, int] = {}
        for known in freqs:
            for term, df in known.items():
                total[term] = total.get(term, 0) + df
        found: list[tuple[str, float]] = []
        for (lexical, dead), known in zip(self.parts, freqs, strict=True):
            # A term repeated in the query counts again, as bm25s counts it.
            weights = {
                term: terms.count(term)
                * lucene_idf(total[term], docs)
                / lucene_idf(df, lexical.size)
                for term, df in known.items()
            }
            found += lexical.scored(weights, n, dead)
        found.sort(key=lambda hit: -hit[1])
        return found[:n]

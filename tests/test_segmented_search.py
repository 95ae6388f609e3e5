"""Several segments searched as one: the same passages, in the same order, as one index."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from index.store.catalog import SegmentInfo
from index.store.lexical import LexicalIndex
from index.store.segments import (
    MAX_SEGMENTS,
    MOST_SEGMENTS,
    SegmentedLexical,
    SegmentedVectors,
    to_merge,
)


def corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` chunk ids (sorted) and texts of twenty words each, from a skewed vocabulary."""
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(300)]
    weights = [1 / (i + 1) for i in range(len(words))]
    ids = [f"{i:06d}-0000" for i in range(n)]
    return ids, [" ".join(rng.choices(words, weights, k=20)) for _ in ids]


def test_bm25_over_segments_ranks_as_one_index_would() -> None:
    ids, texts = corpus(400, seed=1)
    whole = SegmentedLexical.of([(LexicalIndex.build(ids, texts), frozenset())])
    split = SegmentedLexical.of(
        [
            (LexicalIndex.build(ids[:300], texts[:300]), frozenset()),
            (LexicalIndex.build(ids[300:350], texts[300:350]), frozenset()),
            (LexicalIndex.build(ids[350:], texts[350:]), frozenset()),
        ]
    )
    for query in ["word3 word17 word120", "word250", "word1 word2 word2 word299"]:
        expected = whole.search(query, 400)  # every chunk with a term: ties cannot cut
        got = split.search(query, 400)
        assert len(got) > 5 and dict(got).keys() == dict(expected).keys(), query
        np.testing.assert_allclose(
            [dict(got)[cid] for cid, _ in expected], [s for _, s in expected], rtol=1e-5
        )
        # Best first, ties in any order.
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


def test_dead_chunks_are_left_out_of_both_sides() -> None:
    ids, texts = corpus(120, seed=2)
    best = SegmentedLexical.of([(LexicalIndex.build(ids, texts), frozenset())]).search(
        "word5 word9", 5
    )
    dead = frozenset(cid for cid, _ in best[:2])
    lexical = SegmentedLexical.of(
        [
            (LexicalIndex.build(ids[:60], texts[:60]), dead),
            (LexicalIndex.build(ids[60:], texts[60:]), dead),
        ]
    )

    found = [cid for cid, _ in lexical.search("word5 word9", 50)]

    assert found and not dead & set(found)
    assert lexical.chunk_ids == [cid for cid in ids if cid not in dead]


class Store:
    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.asked: list[int] = []

    def query(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        self.asked.append(n)
        scored = sorted(
            ((cid, float(v @ vector)) for cid, v in self.vectors.items()), key=lambda h: -h[1]
        )
        return scored[:n]


@pytest.mark.parametrize(("n", "dead_nearest"), [(1, 4), (3, 4), (10, 4), (5, 60)])
def test_vectors_over_segments_return_the_n_nearest_live_ones(n: int, dead_nearest: int) -> None:
    rng = np.random.default_rng(3)
    vectors = {f"c{i:03d}": rng.normal(size=8) for i in range(300)}
    probe = rng.normal(size=8)
    nearest = Store(vectors).query(probe, 300)
    dead = frozenset(cid for cid, _ in nearest[:dead_nearest])  # the nearest ones are dead
    older = Store({cid: v for cid, v in list(vectors.items())[:200]})
    newer = Store({cid: v for cid, v in list(vectors.items())[200:]})
    store = SegmentedVectors([(older, dead, 200), (newer, dead, 100)])  # type: ignore[list-item]

    assert store.query(probe, n) == [hit for hit in nearest if hit[0] not in dead][:n]
    # It never asked a segment for all its vectors to find them.
    assert max(older.asked + newer.asked) < 200


def test_dead_vectors_far_from_the_question_cost_it_little() -> None:
    rng = np.random.default_rng(4)
    vectors = {f"c{i:03d}": rng.normal(size=8) for i in range(300)}
    probe = rng.normal(size=8)
    nearest = Store(vectors).query(probe, 300)
    dead = frozenset(cid for cid, _ in nearest[-150:])  # the farthest half is dead
    segment = Store(vectors)
    store = SegmentedVectors([(segment, dead, 300)])  # type: ignore[list-item]

    assert store.query(probe, 5) == nearest[:5]
    assert segment.asked == [5 + 5 + 8]  # its share of dead, and a margin: not all 150


def info(name: str, chunks: int, dead: int = 0) -> SegmentInfo:
    return SegmentInfo(
        name, Path(name), name, frozenset(f"{name}-{i}" for i in range(dead)), chunks
    )


def test_a_reindex_merges_the_smallest_segments_once_there_are_many() -> None:
    few = [info(f"seg-00000{i}", 1000 * (i + 1)) for i in range(MAX_SEGMENTS - 1)]
    assert to_merge(few) == []
    many = [info("seg-000001", 100_000), *[info(f"seg-00001{i}", 10 + i) for i in range(5)]]
    assert len(many) == MAX_SEGMENTS
    assert to_merge(many) == ["seg-000010", "seg-000011", "seg-000012", "seg-000013"]


def test_a_small_change_is_not_merged_into_segments_many_times_its_size() -> None:
    big = [info(f"seg-00000{i}", 200_000) for i in range(MAX_SEGMENTS - 1)]
    small = info("seg-000010", 124)
    # One small segment and big ones: no merge yet (it would rewrite 200,000 chunks) ...
    assert to_merge([*big, small]) == []
    # ... until there are small ones to merge together,
    smaller = [info("seg-000011", 30), info("seg-000012", 40)]
    assert to_merge([*big, small, *smaller]) == ["seg-000011", "seg-000012", "seg-000010"]
    # or, lacking those, too many segments: then the smallest go, whatever their sizes.
    more = [info(f"seg-00002{i}", 200_000) for i in range(MOST_SEGMENTS - MAX_SEGMENTS)]
    assert len([*big, *more, small]) == MOST_SEGMENTS
    assert to_merge([*big, *more, small]) == [
        "seg-000010",
        "seg-000000",
        "seg-000001",
        "seg-000002",
    ]


def test_a_mostly_dead_segment_is_merged_whatever_the_count() -> None:
    segments = [info("seg-000001", 1000, dead=600), info("seg-000002", 50, dead=10)]
    assert to_merge(segments) == ["seg-000001"]

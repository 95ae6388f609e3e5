"""Stories: an article and its syndicated copies (the same wire story under other outlets'
URLs, with small edits) grouped at index time, so that an answer cites a story once.

Each article's text gets a MinHash signature of its word shingles (datasketch); MinHash LSH
finds the pairs likely to share `Syndication.threshold` of their shingles, the signatures
confirm them, and the articles linked that way, directly or through each other, are one
story. Signatures are kept in the catalog, so an unchanged article is never shingled again;
the grouping is redone from them at every build (a new article is compared with all the
others; a removed one leaves its story: `group_stories`). Why the threshold is what it is:
docs/stories.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from index.ingest.corpus.article import Article
from index.store.catalog import Catalog

# A build regroups incrementally when it signed at most this many articles (or a tenth of
# them): each is compared with every other article's signature, exactly.
REGROUP_MOST = 1000
# datasketch's permutation scheme: signatures are uint32, 4 bytes a permutation.
SCHEME = "affine32"
SIGNATURE_DTYPE = np.uint32
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Syndication:
    """How near-duplicate articles are told apart from articles on the same topic.

    Each default says where it came from (docs/stories.md has the pairs it was chosen on).
    """

    # Two articles are copies of one story when they share at least this share (Jaccard) of
    # their `shingle`-word shingles. On rtqa-2024's 8,655 articles, the pairs at 0.50 and
    # above were versions of one story (rewrites, localised copies, updates of a live page);
    # just below it (0.44-0.49) the pairs mix such versions with other articles on the same
    # topic (two leap-day explainers, two weeks' movie capsules), and under 0.36 they are
    # different stories on one topic (the days of a winter storm).
    threshold: float = 0.5
    # Words per shingle: 5, as the passage de-duplication (`Ranking.shingle`) uses.
    shingle: int = 5
    # An article of fewer words is its own story: in a brief that short, a standing sentence
    # (a dateline, a boilerplate line) is most of its shingles. rtqa-2024's shortest article
    # has 61 words, so the threshold above was chosen on none shorter.
    min_words: int = 50
    # MinHash LSH is tuned for this lower similarity, so that it puts forward nearly every
    # pair at `threshold` (datasketch's bands for 0.3: 37 of 3 rows; a pair at 0.5 is missed
    # once in 140, against 45 times in 100 with bands tuned for 0.5 itself); the signatures
    # then confirm or drop each pair.
    candidates: float = 0.3
    # MinHash permutations: 128, datasketch's default; the estimate of a Jaccard of 0.5 is
    # then within +-0.09 (two standard deviations), so pairs near it may fall either side.
    num_perm: int = 128
    seed: int = 1

    def recipe(self) -> dict[str, Any]:
        """What a stored signature depends on: signatures made otherwise are made again."""
        recipe = asdict(self)
        del recipe["threshold"], recipe["candidates"]  # applied when grouping, every build
        return {**recipe, "scheme": SCHEME}

    def signatures(self, texts: Iterable[str]) -> list[np.ndarray]:
        """The MinHash signature of each text's word shingles; an empty one for a text of
        fewer than `min_words` words, which is never grouped."""
        words = [_WORD.findall(text.casefold()) for text in texts]
        shingled = [sorted(self._shingles(w)) for w in words]
        sketches = MinHash.generator(
            shingled, num_perm=self.num_perm, seed=self.seed, scheme=SCHEME
        )
        return [
            np.asarray(m.hashvalues, dtype=SIGNATURE_DTYPE)
            if len(w) >= self.min_words
            else np.zeros(0, dtype=SIGNATURE_DTYPE)
            for w, m in zip(words, sketches, strict=True)
        ]

    def stories(self, signatures: Mapping[str, np.ndarray]) -> dict[str, str]:
        """Article id → story id: the smallest article id among the article and its copies
        (its own id when it has none). `signatures` maps every article id to its signature."""
        lsh = MinHashLSH(threshold=self.candidates, num_perm=self.num_perm)
        sketches = {
            aid: LeanMinHash(seed=self.seed, hashvalues=sig, scheme=SCHEME)
            for aid, sig in signatures.items()
            if len(sig)
        }
        with lsh.insertion_session() as session:
            for aid, sketch in sketches.items():
                session.insert(aid, sketch, check_duplication=False)
        edges = [
            (aid, other)
            for aid, sketch in sketches.items()
            for other in lsh.query(sketch)
            if other != aid and sketch.jaccard(sketches[other]) >= self.threshold
        ]
        grouped = _components(set(sketches), edges)
        return {aid: grouped.get(aid, aid) for aid in signatures}

    def regroup(
        self,
        signatures: Mapping[str, np.ndarray],
        before: Mapping[str, str],
        new: set[str],
    ) -> dict[str, str]:
        """Article id → story id, as `stories` makes it, from the stories `before` (article
        id → story id for the articles that were a copy of another) and the articles `new`
        signed since: only the stories a new, edited or removed article was or is in are
        grouped again.

        Each new article is compared with every other article's signature (exactly, with no
        LSH step: a pair LSH would miss is found), and the articles of a story it was in or
        touched are compared with each other again.
        """
        live = set(signatures)
        members: dict[str, set[str]] = {}
        for aid, story in before.items():
            members.setdefault(story, {story}).add(aid)
        story_of = {aid: story for story, found in members.items() for aid in found}
        # Stories that lost an article (removed or edited) or had one edited into them.
        nodes = set(new)
        for found in members.values():
            if found - live or found & new:
                nodes |= found & live
        edges = self._pairs_with_new(signatures, new)
        for _, other in edges:
            nodes |= members.get(story_of.get(other, other), {other}) & live
        taken_apart = sorted(a for a in nodes - new if a in story_of and len(signatures[a]))
        for i, aid in enumerate(taken_apart):  # the stories taken apart: their pairs again
            for other in taken_apart[i + 1 :]:
                if story_of[aid] == story_of[other] and self._copies(
                    signatures[aid], signatures[other]
                ):
                    edges.append((aid, other))
        out = {aid: story for aid, story in story_of.items() if aid in live and aid not in nodes}
        out |= _components(nodes, edges)
        return {aid: out.get(aid, aid) for aid in signatures}

    def _pairs_with_new(
        self, signatures: Mapping[str, np.ndarray], new: set[str]
    ) -> list[tuple[str, str]]:
        """(new article, any other article) for each pair that are copies of one story."""
        signed = [aid for aid in signatures if len(signatures[aid])]
        if not signed:
            return []
        matrix = np.stack([signatures[aid] for aid in signed])
        pairs = []
        for aid in sorted(new):
            if len(signatures[aid]):
                shared = (matrix == signatures[aid]).mean(axis=1)
                pairs += [
                    (aid, signed[int(row)])
                    for row in np.flatnonzero(shared >= self.threshold)
                    if signed[int(row)] != aid
                ]
        return pairs

    def _copies(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether two signatures are of copies of one story (as `LeanMinHash.jaccard`)."""
        return float(np.mean(a == b)) >= self.threshold

    def _shingles(self, words: list[str]) -> set[bytes]:
        size = self.shingle
        if len(words) <= size:
            return {" ".join(words).encode()}
        return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def _components(nodes: set[str], edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each of `nodes` → the smallest id of those it is linked to by `edges`, directly or
    not."""
    parent = {aid: aid for aid in nodes}

    def root(aid: str) -> str:
        while parent[aid] != aid:
            parent[aid] = parent[parent[aid]]
            aid = parent[aid]
        return aid

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {aid: root(aid) for aid in nodes}


def _signature_bytes(signature: np.ndarray) -> bytes:
    """A signature as the catalog stores it."""
    return np.asarray(signature, dtype=SIGNATURE_DTYPE).tobytes()


def _signature_from(blob: bytes) -> np.ndarray:
    """A signature the catalog stored."""
    return np.frombuffer(blob, dtype=SIGNATURE_DTYPE)


def group_stories(catalog: Catalog, changed: Sequence[Article], syndication: Syndication) -> None:
    """Sign the articles of `catalog` without a story signature, then group them into
    stories, recorded in the catalog.

    The texts of `changed` are at hand; any other article lacking a signature (an index
    from before stories, signatures made another way) is signed from the text its chunks
    hold. No model call either way. A generation that shares its older segments' stories
    (`Catalog.story_map`, kept from the generation before) regroups only what its change
    touches (`Syndication.regroup`); any other is grouped whole.
    """
    recipe = syndication.recipe()
    incremental = catalog.get_meta("stories") == recipe and catalog.segment_names()
    if catalog.get_meta("stories") != recipe:
        catalog.drop_signatures()
    missing = catalog.articles_missing_signatures()
    texts = {a.id: a.text for a in changed if a.id in missing}
    texts |= {a.id: a.text for a in catalog.pieced_articles(sorted(missing - texts.keys()))}
    ids = sorted(texts)
    new = {
        aid: _signature_bytes(sig)
        for aid, sig in zip(ids, syndication.signatures(texts[aid] for aid in ids), strict=True)
    }
    every = {aid: _signature_from(blob) for aid, blob in {**catalog.signatures(), **new}.items()}
    if incremental and len(new) <= max(REGROUP_MOST, len(every) // 10):
        stories = syndication.regroup(every, catalog.story_map(), set(new))
    else:
        stories = syndication.stories(every)
    catalog.set_stories(new, stories)
    catalog.set_meta("stories", recipe)


def stories_current(catalog: Catalog, syndication: Syndication) -> bool:
    """Whether every article of `catalog` has a signature made as `syndication` makes them."""
    # A catalog from before stories has no such meta (nor table).
    return (
        catalog.get_meta("stories") == syndication.recipe()
        and not catalog.articles_missing_signatures()
    )

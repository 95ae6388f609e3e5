"""`newsbot` with the fake model, as a program: `python tests/newsbot_fake.py index …`.

The fault-injection tests run the real command line in a subprocess (and kill it); the fake
model keeps that fast. `FAKE_EMBED_SECONDS` (per text) slows embedding down, and
`NEWSBOT_GROUP_CHUNKS` sets how many chunks each committed group holds, so that a run lasts
long enough, and commits often enough, to be killed at many different points.
`NEWSBOT_MAX_SEGMENTS` sets how many older segments make a reindex merge some, and
`NEWSBOT_DIE_IN_MERGE=1` makes a reindex that merges segments SIGKILL itself while it builds
the merged segment's keyword index.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.build import generation as generation_build
from index.cli.app import main
from index.models.embeddings import register_embedder
from index.store import segments
from index.store.catalog import Catalog
from index.store.lexical import LexicalIndex
from tests.fakes import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    def __init__(self, seconds_per_text: float) -> None:
        super().__init__()
        self.seconds_per_text = seconds_per_text

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        time.sleep(self.seconds_per_text * len(texts))
        return super().embed(texts)


if __name__ == "__main__":
    embedder = SlowEmbedder(float(os.environ.get("FAKE_EMBED_SECONDS", "0")))
    register_embedder("fake", lambda arg, settings: embedder)
    os.environ["EMBED_MODEL"] = embedder.name
    generation_build.GROUP_CHUNKS = int(
        os.environ.get("NEWSBOT_GROUP_CHUNKS", generation_build.GROUP_CHUNKS)
    )
    segments.MAX_SEGMENTS = int(os.environ.get("NEWSBOT_MAX_SEGMENTS", segments.MAX_SEGMENTS))
    if os.environ.get("NEWSBOT_DIE_IN_MERGE") == "1":
        absorb, build = Catalog.absorb, LexicalIndex.build
        merging: list[str] = []

        def absorbing(self: Catalog, names: Iterable[str]) -> None:
            names = list(names)
            merging.extend(names)
            absorb(self, names)

        def building(chunk_ids: list[str], texts: Sequence[str]) -> LexicalIndex:
            if merging:
                os.kill(os.getpid(), signal.SIGKILL)
            return build(chunk_ids, texts)

        Catalog.absorb = absorbing  # type: ignore[method-assign,assignment]
        LexicalIndex.build = building  # type: ignore[method-assign]
    main()

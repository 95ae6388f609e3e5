"""`newsbot` with the fake model, as a program: `python tests/newsbot_fake.py index …`.

The fault-injection tests run the real command line in a subprocess (and kill it); the fake
model keeps that fast. `FAKE_EMBED_SECONDS` (per text) slows embedding down, and
`NEWSBOT_GROUP_CHUNKS` sets how many chunks each committed group holds, so that a run lasts
long enough, and commits often enough, to be killed at many different points.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index import generation_build
from index.cli import main
from index.embeddings import register_embedder
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
    main()

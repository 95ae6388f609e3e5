"""Where each part of an index lives inside `NEWSBOT_INDEX_DIR`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IndexLayout:
    """The files of one index folder."""

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def bm25(self) -> Path:
        return self.root / "bm25"

    @property
    def lock(self) -> Path:
        return self.root / "writer.lock"

    @property
    def generation_file(self) -> Path:
        return self.root / "generation"

    def generation(self) -> int:
        """Completed reindexes so far; readers reopen when it moves."""
        try:
            return int(self.generation_file.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def bump_generation(self) -> None:
        tmp = self.generation_file.with_suffix(".tmp")
        tmp.write_text(str(self.generation() + 1))
        os.replace(tmp, self.generation_file)

    def exists(self) -> bool:
        return self.catalog.exists()

    def size_bytes(self) -> int:
        """Bytes on disk under the index folder.

        A reindex may be running: files and folders it removes meanwhile are skipped.
        """
        total = 0
        for folder, _, files in os.walk(self.root):  # os.walk skips folders that vanish
            for name in files:
                try:
                    total += os.stat(os.path.join(folder, name)).st_size
                except FileNotFoundError:
                    continue
        return total

"""Where each part of an index lives inside `NEWSBOT_INDEX_DIR`.

An index folder holds generations: each complete reindex is a folder of its own
(`gen-000007/`: its catalog, naming the segments it is made of, under `segments/`: each a
catalog, BM25 and, for the embedded store, Chroma), never written again once complete.
`CURRENT` names the one in service; a reindex builds the next one in `building/` and
switches `CURRENT` to it in one atomic rename, so readers only ever open a complete,
unchanging generation. (A generation from before segments holds its catalog, BM25 and
Chroma itself.)
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

# Every name the store gives in an index folder: its on-disk format (the ingest layer's own
# records there are named in `index.ingest.folders`). Existing index folders are found by
# these names, so none of them may change.
CATALOG_FILE = "catalog.sqlite"  # a generation's catalog, and a segment's
BM25_FOLDER = "bm25"  # a segment's BM25 index (a generation's, before segments)
CHROMA_FOLDER = "chroma"  # a segment's embedded Chroma (a generation's, before segments)
SEGMENTS_FOLDER = "segments"  # the segments generations share
BUILDING_FOLDER = "building"  # the generation a reindex is building
CURRENT_FILE = "CURRENT"  # names the generation in service
LOCK_FILE = "writer.lock"
GENERATION = re.compile(r"gen-(\d{6})")
# A segment's folder under `segments/`, numbered as the generation that wrote it.
SEGMENT_NAME = re.compile(r"seg-\d{6}")
# What an index folder held before generations (format 1): one index, in place.
LEGACY_FILES = (CATALOG_FILE, f"{CATALOG_FILE}-wal", f"{CATALOG_FILE}-shm", "generation")
LEGACY_FOLDERS = (BM25_FOLDER, CHROMA_FOLDER)


def segment_name(number: int) -> str:
    """The segment written by generation `number`."""
    return f"seg-{number:06d}"


@dataclass(frozen=True)
class Parts:
    """A folder of an index's parts: its catalog, BM25 and embedded Chroma (a segment's, or
    a generation's from before segments)."""

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / CATALOG_FILE

    @property
    def bm25(self) -> Path:
        return self.root / BM25_FOLDER

    @property
    def chroma(self) -> Path:
        return self.root / CHROMA_FOLDER


@dataclass(frozen=True)
class Generation(Parts):
    """The files of one generation: complete (`gen-NNNNNN/`, or a legacy index folder) or
    being built (`building/`)."""

    number: int

    @property
    def name(self) -> str:
        return self.root.name if self.number else "legacy"


@dataclass(frozen=True)
class IndexLayout:
    """The generations, pointer and lock of one index folder."""

    root: Path

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def current_file(self) -> Path:
        return self.root / CURRENT_FILE

    @property
    def building(self) -> Path:
        return self.root / BUILDING_FOLDER

    @property
    def building_catalog(self) -> Path:
        """The catalog of the generation being built (its number is in its `build` entry)."""
        return self.building / CATALOG_FILE

    @property
    def segments(self) -> Path:
        """The segments generations share (`index.store.catalog`, docs/architecture.md)."""
        return self.root / SEGMENTS_FOLDER

    def segment(self, name: str) -> Parts:
        """The folder of the segment `name`."""
        return Parts(self.segments / name)

    @property
    def legacy(self) -> Generation:
        """Where an index from before generations is (the index folder itself)."""
        return Generation(self.root, 0)

    def remove_segments(self, keep: set[str]) -> None:
        """Delete the segment folders not named in `keep`."""
        if not self.segments.is_dir():
            return
        for path in self.segments.iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def generation_dir(self, number: int) -> Path:
        return self.root / f"gen-{number:06d}"

    def complete(self, number: int) -> Generation:
        """The complete generation `number` (its folder may be gone; the legacy one for 0)."""
        return Generation(self.generation_dir(number), number) if number else self.legacy

    def numbers(self) -> list[int]:
        """The numbers of the generation folders present (complete ones only)."""
        out = []
        for path in self.root.glob("gen-*"):
            found = GENERATION.fullmatch(path.name)
            if found:
                out.append(int(found.group(1)))
        return sorted(out)

    def current(self) -> Generation | None:
        """The generation in service, or None before the first complete reindex."""
        try:  # damaged, it names no generation
            name = self.current_file.read_bytes().decode("utf-8", "replace").strip()
        except FileNotFoundError:
            name = ""
        found = GENERATION.fullmatch(name)
        if found and (self.root / name / CATALOG_FILE).exists():
            return Generation(self.root / name, int(found.group(1)))
        if self.legacy.catalog.exists():
            return self.legacy
        return None

    def current_damage(self) -> str | None:
        """Why no generation is in service though one was (`current` is None): `CURRENT`
        missing, naming none, or naming one whose catalog is gone; None if there never was
        one (no complete generation folder: nothing indexed yet)."""
        if self.current() is not None or not self.numbers():
            return None
        if not self.current_file.exists():
            return f"{CURRENT_FILE} is missing"
        name = self.current_file.read_bytes().decode("utf-8", "replace").strip()
        if not GENERATION.fullmatch(name):
            return f"{CURRENT_FILE} names no generation"
        return f"{name}/{CATALOG_FILE}, the generation {CURRENT_FILE} names, is missing"

    def generation(self) -> int:
        """The number of the generation in service (0 for none or a legacy index)."""
        current = self.current()
        return current.number if current else 0

    def switch_to(self, generation: Generation) -> None:
        """Put `generation` in service: one atomic rename, durable once this returns."""
        tmp = self.root / "CURRENT.tmp"
        with open(tmp, "w") as handle:
            handle.write(generation.root.name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.current_file)
        sync_folder(self.root)

    def remove_stale(self, keep: set[int]) -> None:
        """Delete complete generations not in `keep`, and a legacy index unless 0 is kept."""
        for path in self.root.glob("gen-*"):
            found = GENERATION.fullmatch(path.name)
            if found and int(found.group(1)) not in keep:
                shutil.rmtree(path, ignore_errors=True)
        if 0 not in keep:
            for name in LEGACY_FILES:
                (self.root / name).unlink(missing_ok=True)
            for name in LEGACY_FOLDERS:
                shutil.rmtree(self.root / name, ignore_errors=True)

    def exists(self) -> bool:
        return self.current() is not None

    def size_bytes(self) -> int:
        """Bytes on disk under the index folder (every generation, and a build under way).

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


def sync_folder(path: Path) -> None:
    """Make renames and new entries in folder `path` durable (or, given a file, its data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

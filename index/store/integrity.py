"""A sealed segment's files as they were written, and the check that they still are.

When a segment is sealed its files (catalog, BM25, the embedded store's Chroma) never change
again (docs/architecture.md, "Segments"), so the generation that seals it records each file's
size and two CRC-32s: of its first `HEAD_BYTES`, and of the whole file. A reader checks the
sizes and the heads (a `stat` and one small read per file: a file deleted, cut short, grown or
overwritten from its start), and reads a small file whole; `newsbot status` and `newsbot index`
check every byte. Segments sealed before the record existed have none: they are not
verifiable, which is not damage.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The start of each file a reader checksums on every open: one small read per file.
HEAD_BYTES = 4096
# A file up to this size is checksummed whole on every open too (the BM25 parameters, the
# HNSW header, a small segment's files): as cheap as its head.
SMALL_FILE = 64 * 1024
# Read in blocks of this size when checksumming a whole file.
BLOCK = 1 << 20

# A file's record: [size, CRC-32 of its head, CRC-32 of the whole file].
FileRecord = list[int]
RECORD_FIELDS = 3


@dataclass(frozen=True)
class Damage:
    """What is wrong with one file of a segment: `file` (its path in the segment's folder)
    and `reason` ("is missing", "is cut short (…)")."""

    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file} {self.reason}"


def record_files(folder: Path) -> dict[str, FileRecord]:
    """Every file under `folder` (a sealed segment's), by its path relative to it."""
    out: dict[str, FileRecord] = {}
    for parent, _, files in os.walk(folder):
        for name in files:
            path = Path(parent) / name
            head, whole = _checksums(path, whole=True)
            out[path.relative_to(folder).as_posix()] = [path.stat().st_size, head, whole or 0]
    return dict(sorted(out.items()))


def check_files(
    folder: Path, record: Mapping[str, Any], *, part: str | None = None, thorough: bool = False
) -> Damage | None:
    """What is wrong with the files under `folder` against their `record` (`record_files`),
    naming the first damaged file; None if nothing is.

    `part`: only the files under this subfolder (`bm25`), or only this file. `thorough`:
    checksum every byte of every file, not only the sizes, the heads and the small files.
    """
    for rel, value in record.items():
        if part is not None and rel != part and not rel.startswith(part + "/"):
            continue
        damage = _check_file(folder, rel, value, thorough=thorough)
        if damage is not None:
            return damage
    return None


def _check_file(folder: Path, rel: str, value: Any, *, thorough: bool) -> Damage | None:
    """What is wrong with the file `rel` under `folder` against its record `value`."""
    size, head, whole = _parse(value)
    if size is None:
        return Damage(rel, "has a record that cannot be read")
    path = folder / rel
    try:
        found = path.stat().st_size
    except FileNotFoundError:
        top = rel.split("/", 1)[0]
        if top != rel and not (folder / top).exists():  # a whole folder: say so
            return Damage(f"{top}/", "is missing")
        return Damage(rel, "is missing")
    except OSError as exc:
        return Damage(rel, f"cannot be read ({exc.strerror or exc})")
    if found < size:
        return Damage(rel, f"is cut short ({found:,} of {size:,} bytes)")
    if found > size:
        return Damage(rel, f"has grown ({found:,} bytes, {size:,} when written)")
    try:
        got_head, got_whole = _checksums(path, whole=thorough or size <= SMALL_FILE)
    except OSError as exc:
        return Damage(rel, f"cannot be read ({exc.strerror or exc})")
    if got_head != head or (got_whole is not None and got_whole != whole):
        return Damage(rel, "has changed since it was written (its checksum differs)")
    return None


def _parse(value: Any) -> tuple[int | None, int, int]:
    if (
        isinstance(value, list)
        and len(value) == RECORD_FIELDS
        and all(isinstance(v, int) for v in value)
    ):
        return value[0], value[1], value[2]
    return None, 0, 0


def _checksums(path: Path, *, whole: bool) -> tuple[int, int | None]:
    """The CRC-32 of the file's head, and of the whole file if `whole`."""
    with open(path, "rb") as handle:
        first = handle.read(HEAD_BYTES)
        head = zlib.crc32(first)
        if not whole:
            return head, None
        crc = head
        while block := handle.read(BLOCK):
            crc = zlib.crc32(block, crc)
        return head, crc

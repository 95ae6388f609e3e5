"""Compression bombs: a few KB that expand to hundreds of MB of zeros once decoded, made
without ever holding the zeros (compressed a megabyte at a time, or one frame repeated)."""

from __future__ import annotations

import resource
import subprocess
import sys
import zlib
from functools import cache
from pathlib import Path

import zstandard

MiB = 1024 * 1024
ZEROS = bytes(MiB)


@cache
def gzip_bomb(mib: int) -> bytes:
    """gzip that decodes to `mib` MiB of zeros (about 1 KB a MiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return b"".join(compressor.compress(ZEROS) for _ in range(mib)) + compressor.flush()


@cache
def zstd_bomb(mib: int) -> bytes:
    """zstd that decodes to `mib` MiB of zeros: one 128 MiB frame over and over (4 KB a
    frame; 4 GiB in 130 KB), and a last, smaller one."""
    frame_mib = 128
    whole, rest = divmod(mib, frame_mib)
    compressor = zstandard.ZstdCompressor(level=1)
    frame = compressor.compress(bytes(frame_mib * MiB)) if whole else b""
    tail = compressor.compress(bytes(rest * MiB)) if rest else b""
    return frame * whole + tail


NEWSBOT = Path(__file__).resolve().parent / "newsbot_fake.py"
# The address space `newsbot add` or `sync` may use: it needs about 600 MB (libraries mapped,
# thread stacks); a bomb decoded whole would need gigabytes.
MEMORY_LIMIT = 1024 * MiB


def newsbot_in_little_memory(*args: str) -> subprocess.CompletedProcess[str]:
    """The real `newsbot` (with the fake model) run with `MEMORY_LIMIT` of address space, so
    that a body decoded whole fails it (MemoryError) rather than the machine."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, str(NEWSBOT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )

"""Content codings (`Content-Encoding: gzip`...) decoded as a body's bytes come, in bounded
pieces, so that whoever reads can stop at a size limit however far the body would expand.

httpx decodes a whole network chunk at once: 131 KB of zstd expand to 4 GiB in one call, past
any limit counted afterwards. Here each coding hands on at most `PIECE` bytes at a time, and
whatever takes them may raise to stop the decoding there.

    decoder = BodyDecoder(codings_of(response.headers.get("content-encoding")), keep)
    for chunk in raw_chunks:
        decoder.write(chunk)      # `keep` gets the decoded bytes, a piece at a time

Decoded: gzip (`x-gzip`), deflate (zlib-wrapped or raw), zstd (if the `zstandard` package is
installed; its window is limited to 8 MiB, as RFC 9659 allows) and identity, stacked up to
`MAX_CODINGS` deep (`gzip, gzip`). Anything else (`br`, `compress`) is refused:
`UnsupportedCoding`. `ACCEPT_ENCODING` names what is decoded, for the request's header.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import IO, Any, Protocol, cast

try:
    import zstandard
except ImportError:  # pragma: no cover - an optional dependency (httpx's `zstd` extra)
    zstandard = None  # type: ignore[assignment]

# The most decoded bytes one step hands on at a time.
PIECE = 64 * 1024
# Codings applied one over another: servers apply one; two is already odd.
MAX_CODINGS = 3
# The largest zstd window accepted: RFC 9659 asks decoders for 8 MiB and lets them refuse more
# (a frame declaring a 2 GiB window would make the decoder allocate it).
ZSTD_MAX_WINDOW = 8 * 1024 * 1024
GZIP_WBITS = zlib.MAX_WBITS | 16
ZLIB_WBITS = zlib.MAX_WBITS
RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
DECODED = ("gzip", "deflate", *(("zstd",) if zstandard is not None else ()))
ACCEPT_ENCODING = ", ".join(DECODED)
# Names that mean one of the above, or nothing at all.
ALIASES = {"x-gzip": "gzip", "identity": "", "": ""}

Sink = Callable[[bytes], None]


class UnsupportedCoding(Exception):
    """A Content-Encoding newsbot does not decode; the message says which, on one line."""


class UndecodableBody(Exception):
    """A body that is not what its Content-Encoding says; the message says why, on one line."""


class _Step(Protocol):
    def write(self, data: bytes) -> None: ...


def codings_of(header: str | None) -> list[str]:
    """The codings a Content-Encoding header names, in the order they were applied.

    Raises:
        UnsupportedCoding: one is not decoded here, or there are more than `MAX_CODINGS`.
    """
    codings = []
    for name in (header or "").split(","):
        coding = name.strip().lower()
        coding = ALIASES.get(coding, coding)
        if not coding:
            continue
        if coding not in DECODED:
            shown = coding if len(coding) <= 40 else coding[:39] + "…"
            raise UnsupportedCoding(
                f"content encoded as {shown!r}, which newsbot does not decode "
                f"(it asks for {ACCEPT_ENCODING})"
            )
        codings.append(coding)
    if len(codings) > MAX_CODINGS:
        raise UnsupportedCoding(
            f"content encoded {len(codings)} times over (newsbot decodes up to {MAX_CODINGS})"
        )
    return codings


class BodyDecoder:
    """Decodes `codings` (as `codings_of` gives them) and hands the decoded bytes to `sink`,
    at most `PIECE` at a time; an exception `sink` raises stops the decoding and comes out of
    `write`.

    Raises (from `write`):
        UndecodableBody: the bytes are not in the coding named.
    """

    def __init__(self, codings: list[str], sink: Sink) -> None:
        out: Sink = sink
        # The last coding applied is the first undone.
        for coding in codings:
            out = _step(coding, out).write
        self._write = out

    def write(self, raw: bytes) -> None:
        """Decode the next bytes of the body."""
        if raw:
            self._write(raw)


def _step(coding: str, out: Sink) -> _Step:
    if coding == "gzip":
        return _Inflate(out, GZIP_WBITS, coding)
    if coding == "deflate":
        return _Inflate(out, ZLIB_WBITS, coding)
    return _Zstd(out)


class _Inflate:
    """gzip (one member after another) or deflate (zlib-wrapped, else raw, as browsers
    accept it)."""

    def __init__(self, out: Sink, wbits: int, coding: str) -> None:
        self.out = out
        self.wbits = wbits
        self.coding = coding
        self.started = False
        self.done = False
        self.inflater: Any = zlib.decompressobj(wbits)

    def write(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            if self.coding == "deflate" and not _zlib_header(data):
                self.wbits = RAW_DEFLATE_WBITS
                self.inflater = zlib.decompressobj(self.wbits)
        while not self.done:
            try:
                piece = self.inflater.decompress(data, PIECE)
            except zlib.error as exc:
                raise UndecodableBody(f"undecodable {self.coding} body ({exc})") from exc
            if piece:
                self.out(piece)
            if self.inflater.eof:
                data = self.inflater.unused_data
                if self.coding != "gzip":
                    self.done = True  # what follows a deflate stream is not the body
                elif data:
                    self.inflater = zlib.decompressobj(self.wbits)  # the next member
                else:
                    return
                continue
            data = self.inflater.unconsumed_tail
            # A full piece may leave more output behind: ask again, with no more input.
            if not data and len(piece) < PIECE:
                return


def _zlib_header(data: bytes) -> bool:
    """Whether `data` starts with a zlib header (RFC 1950): deflate, checksummed."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class _Zstd:
    """zstd, frame after frame, its window no larger than `ZSTD_MAX_WINDOW`."""

    def __init__(self, out: Sink) -> None:
        assert zstandard is not None, "zstd is refused without the zstandard package"
        decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        sink = cast("IO[bytes]", _Writer(out))  # zstandard only calls its `write`
        self.writer = decompressor.stream_writer(sink, write_size=PIECE)

    def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
        except zstandard.ZstdError as exc:
            raise UndecodableBody(f"undecodable zstd body ({exc})") from exc


class _Writer:
    """The file-like object zstandard writes its output to: a `Sink` behind `write`."""

    def __init__(self, out: Sink) -> None:
        self.out = out

    def write(self, data: bytes) -> int:
        self.out(bytes(data))
        return len(data)

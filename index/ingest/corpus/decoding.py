"""Bytes to text: BOMs, BOM-less UTF-16, legacy charsets detected, binary data refused."""

from __future__ import annotations

import codecs
import re

from index.errors import ArticleError

# Text has (almost) no C0 control characters besides tab and line breaks; binary data has many.
BINARY_CONTROL_SHARE = 0.01
BINARY_SNIFF_CHARS = 65_536
# BOM-less UTF-16: Latin-script text has a NUL in every other byte, binary data rarely does.
UTF16_NUL_SHARE = 0.3
UTF16_STRAY_NUL_SHARE = 0.02
# The usual legacy encoding of news in Latin script: preferred when the detector can't tell.
LEGACY_ENCODING = "cp1252"
# Leading bytes of binary formats that turn up renamed as text, and what they are.
BINARY_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive, .docx or .xlsx",
    b"\x1f\x8b": "gzip data",
    b"\x7fELF": "a program",
    b"SQLite format 3\x00": "an SQLite database",
}
# Checked in this order: UTF-32's little-endian BOM starts with UTF-16's.
BOM_ENCODINGS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def decode_text(data: bytes, where: str) -> str:
    """Bytes to text: by BOM, as UTF-8 or BOM-less UTF-16, else detected; binary is refused."""
    kind = binary_signature(data)
    if kind:
        raise ArticleError(where, f"binary file ({kind}), not text")
    encoding = unicode_encoding(data)
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            label = encoding.removesuffix("-sig").upper()
            raise ArticleError(where, f"not valid {label} text ({exc.reason})") from exc
    elif b"\x00" in data:
        raise ArticleError(where, "binary file (NUL bytes), not text")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _decode_detected(data, where)
    if _looks_binary(text):
        raise ArticleError(where, "binary file (control characters), not text")
    return text


def binary_signature(data: bytes) -> str | None:
    """What binary format `data` starts like ("a PNG image"); None if none."""
    return next((kind for magic, kind in BINARY_SIGNATURES.items() if data.startswith(magic)), None)


def unicode_encoding(data: bytes) -> str | None:
    """The encoding a BOM names, or UTF-16 recognised by its NUL bytes; None for the rest."""
    for bom, encoding in BOM_ENCODINGS:
        if data.startswith(bom):
            return encoding
    if len(data) % 2:
        return None
    sample = data[: 2 * BINARY_SNIFF_CHARS]
    pairs = len(sample) // 2
    if not pairs:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd >= UTF16_NUL_SHARE * pairs and even <= UTF16_STRAY_NUL_SHARE * pairs:
        return "utf-16-le"
    if even >= UTF16_NUL_SHARE * pairs and odd <= UTF16_STRAY_NUL_SHARE * pairs:
        return "utf-16-be"
    return None


def detect_encoding(data: bytes) -> str | None:
    """The legacy encoding `data` is most likely in, by charset-normalizer; None if none fits."""
    from charset_normalizer import from_bytes

    # BOM-less UTF-16/32 was ruled out: the detector guesses it for short even-length text.
    matches = [m for m in from_bytes(data) if not m.encoding.startswith(("utf_16", "utf_32"))]
    if not matches:
        return None
    best = matches[0]
    # Short Western text often scores the same in cp1250, cp1252, cp1257...: on a tie prefer
    # cp1252, the usual legacy encoding of news in Latin script ("São", not "Săo").
    for match in matches:
        same_score = (match.chaos, match.coherence) == (best.chaos, best.coherence)
        if same_score and LEGACY_ENCODING in (match.encoding, *match.could_be_from_charset):
            return LEGACY_ENCODING
    return best.encoding


def _decode_detected(data: bytes, where: str) -> str:
    detected = detect_encoding(data)
    try:
        if detected is None:
            raise UnicodeError
        return data.decode(detected)
    except (UnicodeError, LookupError):
        raise ArticleError(where, "not text: no encoding fits it (binary data?)") from None


def _looks_binary(text: str) -> bool:
    sample = text[:BINARY_SNIFF_CHARS]
    return len(_CONTROL.findall(sample)) > BINARY_CONTROL_SHARE * len(sample)

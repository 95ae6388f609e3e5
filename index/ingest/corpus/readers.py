"""Format readers: one file's bytes to articles, chosen from `READERS` by the file's suffix."""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import ArticleError
from index.ingest.corpus.article import Article, make_article
from index.ingest.corpus.decoding import (
    binary_signature,
    decode_text,
    detect_encoding,
    unicode_encoding,
)
from index.ingest.corpus.files import FileLimits, read_bytes, too_large
from index.ingest.corpus.frontmatter import NESTED_TOO_DEEPLY, read_sidecar, split_front_matter
from index.ingest.corpus.metadata import scalar_text
from index.ingest.markup import markup_problem

Read = tuple[str, Article | ArticleError]
"""Where in the file (the path, or path:line), and the article or why there is none."""

ReadFunction = Callable[[Path, str, bytes, FileLimits], Iterator[Read]]
"""Reads one file's bytes (never empty): its path, its name under the corpus, its bytes, limits."""

ONE_ARTICLE = "one article"


@dataclass(frozen=True)
class Reader:
    """One file format: how its bytes become articles, and how large a file of it may be."""

    read: ReadFunction
    # The file as the too-large message names it.
    what: str = "an article file"
    # Many articles in one file (JSON, say): the collection limit applies, not one article's.
    collection: bool = False

    def limit(self, limits: FileLimits) -> int:
        """The most bytes a file of this format may hold (after gunzip)."""
        return limits.collection_bytes if self.collection else limits.article_bytes


def read_file(path: Path, rel: str, limits: FileLimits) -> Iterator[Read]:
    """The articles in one corpus file, read by the reader its suffix names.

    Args:
        path: the file to read.
        rel: the file as articles and problems name it (its path under the corpus folder).
        limits: the largest article and JSON/JSONL file read.

    Returns:
        Each article, or the problem of a record that is not one, with where it was read.

    Raises:
        ArticleError: the file as a whole cannot be read: no reader for its suffix, or it is
            unreadable, too large, empty, holds no records or is not the format its suffix
            says.
    """
    reader = reader_for(path.name)
    if reader is None:
        raise ArticleError(rel, f"unsupported file type (expected {', '.join(READERS)})")
    data = read_bytes(path, rel, reader.limit(limits), reader.what)
    if not data.strip():
        raise ArticleError(rel, "empty file" if not data else "empty file (only whitespace)")
    found = False
    for read in reader.read(path, rel, data, limits):
        found = True
        yield read
    if not found:  # an empty JSON list, a JSONL file of a BOM and blank lines
        raise ArticleError(rel, "no articles in it (no records)")


def reader_for(name: str) -> Reader | None:
    """The reader of the longest suffix the file `name` ends with; None if no reader fits."""
    name = name.lower()
    suffix = max((suffix for suffix in READERS if name.endswith(suffix)), key=len, default=None)
    return READERS[suffix] if suffix is not None else None


def _read_text(path: Path, rel: str, data: bytes, limits: FileLimits) -> Iterator[Read]:
    """A text or Markdown article; front matter wins over its sidecar."""
    text = decode_text(data, rel)
    meta, body = split_front_matter(text, rel)
    meta = {**read_sidecar(path, rel, limits), **meta}
    yield rel, make_article(rel, meta, body, path=rel, markdown=path.suffix.lower() != ".txt")


def _read_html(path: Path, rel: str, data: bytes, limits: FileLimits) -> Iterator[Read]:
    """An HTML page's article text (trafilatura); its sidecar wins over the page's metadata."""
    import trafilatura

    html = decode_text(data, rel)
    problem = markup_problem(html)
    if problem is not None:
        raise ArticleError(rel, problem)
    found = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
    doc = found.as_dict() if found is not None and not isinstance(found, dict) else found
    text = doc.get("text") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not text:
        raise ArticleError(rel, "no article text found in the HTML")
    meta: dict[str, Any] = {
        "title": doc.get("title"),
        "author": doc.get("author"),
        "published": doc.get("date"),
        "url": doc.get("url"),
        "source": doc.get("sitename"),
    }
    meta = {**{k: v for k, v in meta.items() if v}, **read_sidecar(path, rel, limits)}
    yield rel, make_article(rel, meta, str(text), path=rel)


def _read_json(path: Path, rel: str, data: bytes, limits: FileLimits) -> Iterator[Read]:
    """A JSON document: one article object, or a list of them."""
    text = decode_text(data, rel)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArticleError(rel, f"invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    except (ValueError, RecursionError) as exc:
        raise ArticleError(rel, f"invalid JSON ({_unparsable(exc)})") from exc
    items = doc if isinstance(doc, list) else [doc]
    records = ((f"{rel}[{n}]", item) for n, item in enumerate(items))
    yield from _record_articles(records, rel, limits)


def _read_jsonl(path: Path, rel: str, data: bytes, limits: FileLimits) -> Iterator[Read]:
    """JSON Lines: one article object a line; a bad line is its own problem."""
    records = (
        (f"{rel}:{n}", _json_line(line, f"{rel}:{n}", rel))
        for n, line in _jsonl_lines(data, rel, limits)
    )
    yield from _record_articles(records, rel, limits)


def _record_articles(
    records: Iterable[tuple[str, Any]], rel: str, limits: FileLimits
) -> Iterator[Read]:
    for where, record in records:
        if isinstance(record, ArticleError):
            yield where, record
            continue
        try:
            yield where, _record_article(record, where, rel, limits)
        except ArticleError as exc:
            yield where, ArticleError(where, exc.reason, path=rel)


def _jsonl_lines(
    data: bytes, rel: str, limits: FileLimits
) -> Iterator[tuple[int, str | ArticleError]]:
    """Each non-blank line's number and text; a line that is not text is its own problem."""
    lines = _split_lines(data, rel)
    read: dict[int, str | ArticleError] = {}
    legacy: list[int] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        text = _line_text(line, f"{rel}:{n}", rel, limits)
        if text is None:  # not UTF-8: decoded below with the others like it
            legacy.append(n)
        else:
            read[n] = text
    if legacy:
        read.update(_legacy_lines({n: lines[n - 1] for n in legacy}, rel))
    if read and all(isinstance(item, ArticleError) for item in read.values()) and b"\x00" in data:
        raise ArticleError(rel, "binary file (NUL bytes), not text")
    yield from sorted(read.items())


def _split_lines(data: bytes, rel: str) -> list[bytes]:
    """The file's lines as bytes, each UTF-8 or in one legacy encoding."""
    encoding = unicode_encoding(data)
    if encoding not in (None, "utf-8-sig"):
        # UTF-16/32: a newline byte can be half a character, so decode the whole file first.
        return [line.encode("utf-8") for line in decode_text(data, rel).split("\n")]
    kind = binary_signature(data)
    if kind:
        raise ArticleError(rel, f"binary file ({kind}), not text")
    return data.removeprefix(codecs.BOM_UTF8).split(b"\n")


def _line_text(line: bytes, where: str, rel: str, limits: FileLimits) -> str | ArticleError | None:
    """A line's text, why it is not one, or None if it is not UTF-8."""
    if len(line) > limits.article_bytes:
        reason = too_large("line", len(line), limits.article_bytes, ONE_ARTICLE)
        return ArticleError(where, reason, path=rel)
    if b"\x00" in line:
        return ArticleError(where, "binary data (NUL bytes), not a JSON line", path=rel)
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _legacy_lines(lines: dict[int, bytes], rel: str) -> dict[int, str | ArticleError]:
    """Lines that are not UTF-8, decoded in the one legacy encoding detected from them all."""
    detected = detect_encoding(b"\n".join(lines.values()))
    read: dict[int, str | ArticleError] = {}
    for n, line in lines.items():
        try:
            if detected is None:
                raise UnicodeError
            read[n] = line.decode(detected)
        except UnicodeError:
            read[n] = ArticleError(f"{rel}:{n}", "not text: no encoding fits the line", path=rel)
    return read


def _json_line(line: str | ArticleError, where: str, rel: str) -> Any:
    if isinstance(line, ArticleError):
        return line
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return ArticleError(where, f"invalid JSON line ({exc.msg})", path=rel)
    except (ValueError, RecursionError) as exc:
        return ArticleError(where, f"invalid JSON line ({_unparsable(exc)})", path=rel)


def _unparsable(exc: ValueError | RecursionError) -> str:
    """Why a JSON text that is not malformed still can't be read, in a few words."""
    if isinstance(exc, RecursionError):
        return NESTED_TOO_DEEPLY
    # "Exceeds the limit (4300 digits) for integer string conversion: value has ...".
    return str(exc).split(":")[0]


def _record_article(record: Any, where: str, rel: str, limits: FileLimits) -> Article:
    if not isinstance(record, dict):
        raise ArticleError(where, "expected a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ArticleError(where, "no 'text' field")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.article_bytes:
        raise ArticleError(where, too_large("'text'", size, limits.article_bytes, ONE_ARTICLE))
    meta = {k: record.get(k) for k in ("title", "url", "source", "published", "author")}
    if not meta["published"] and record.get("date"):
        meta["published"] = record.get("date")
    raw_id = record.get("id")
    if raw_id not in (None, ""):
        article_id = scalar_text(raw_id)
        if article_id is None:
            raise ArticleError(where, "'id' is not a string or a number")
    elif isinstance(meta["url"], str) and meta["url"]:
        # surrogatepass: a URL that is not valid Unicode is refused by make_article, by name.
        article_id = hashlib.sha1(meta["url"].encode("utf-8", "surrogatepass")).hexdigest()[:16]
    else:
        article_id = where
    return make_article(article_id, meta, text, path=rel)


_TEXT = Reader(_read_text)
_HTML = Reader(_read_html)
_JSON = Reader(_read_json, what="a JSON/JSONL file", collection=True)
_JSONL = Reader(_read_jsonl, what="a JSON/JSONL file", collection=True)

READERS: dict[str, Reader] = {
    ".md": _TEXT,
    ".markdown": _TEXT,
    ".txt": _TEXT,
    ".html": _HTML,
    ".htm": _HTML,
    ".json": _JSON,
    ".jsonl": _JSONL,
    ".jsonl.gz": _JSONL,
    ".json.gz": _JSON,
}
"""Lower-case file suffix → its reader; the longest suffix a name ends with wins.

A new format (a feed, say) is one more entry: `READERS[".rss"] = Reader(read_feed)`. Files
ending in `.gz` are gunzipped before their reader sees them. The unsupported-file message
lists these suffixes in this order.
"""

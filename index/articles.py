"""Articles: reading a corpus folder (text, Markdown, HTML, JSON/JSONL) into `Article`s."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from index.errors import ArticleError, CorpusError

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json", ".jsonl", ".jsonl.gz", ".json.gz")
SIDECAR_SUFFIX = ".meta.yaml"
MAX_TITLE_CHARS = 160
# Lines that are navigation or promotion, not news. Only short lines are considered.
PROMO_MAX_CHARS = 200
PROMO_PATTERNS = [
    r"(?:read|see)\s+(?:also|more|next)\b.*",
    r"(?:also read|related(?:\s+(?:stories|articles|news|coverage))?|recommended|trending)\s*:.*",
    r"join\b.*\b(?:channel|newsletter|whatsapp|telegram)\b.*",
    r"open in (?:whatsapp|telegram|app)\b.*",
    r"(?:subscribe|sign up)\b.*\b(?:newsletter|updates|channel|alerts)\b.*",
    r"follow (?:us|\w+) on\b.*",
    r"(?:click|tap) here\b.*",
    r"download (?:our|the) app\b.*",
    r"(?:advertisement|sponsored content|story continues below(?: advertisement)?)",
]
_PROMO = re.compile(r"^(?:" + "|".join(PROMO_PATTERNS) + r")$", re.IGNORECASE)
_URL_DATE = [
    re.compile(r"/((?:19|20)\d{2})[/-](\d{1,2})[/-](\d{1,2})(?:/|-|$)"),
    re.compile(r"/((?:19|20)\d{2})(\d{2})(\d{2})(?:/|-|_|$)"),
]
# Outlets whose host does not spell their name well.
KNOWN_OUTLETS = {
    "apnews.com": "AP News",
    "bbc.co.uk": "BBC",
    "bbc.com": "BBC",
    "cnn.com": "CNN",
    "nytimes.com": "The New York Times",
    "washingtonpost.com": "The Washington Post",
    "wsj.com": "The Wall Street Journal",
    "theguardian.com": "The Guardian",
    "reuters.com": "Reuters",
    "npr.org": "NPR",
    "foxnews.com": "Fox News",
    "nbcnews.com": "NBC News",
    "cbsnews.com": "CBS News",
    "abcnews.go.com": "ABC News",
    "aljazeera.com": "Al Jazeera",
    "businessday.ng": "BusinessDay",
}


@dataclass(frozen=True)
class Article:
    """One news article, cleaned, with the metadata a citation shows."""

    id: str
    title: str
    text: str
    path: str
    source: str | None = None
    url: str | None = None
    published: str | None = None
    author: str | None = None
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        payload = json.dumps(
            [self.title, self.text, self.source, self.url, self.published, self.author]
        )
        object.__setattr__(
            self, "content_hash", hashlib.sha256(payload.encode("utf-8")).hexdigest()
        )


@dataclass
class CorpusScan:
    """What a corpus folder yielded: articles, and problems that did not stop the scan."""

    articles: list[Article] = field(default_factory=list)
    problems: list[ArticleError] = field(default_factory=list)
    # Files that failed as a whole or in part: their previously indexed articles are kept.
    failed_paths: set[str] = field(default_factory=set)


def scan_corpus(root: Path) -> CorpusScan:
    """Read every article under `root` (any depth).

    Args:
        root: the corpus folder, or a single file of articles.

    Returns:
        The articles in a stable order, and the files or records that could not be read.

    Raises:
        CorpusError: `root` is not a readable folder.
    """
    if root.is_file():  # one file of articles (a .jsonl.gz, say) is a corpus too
        files, base = [root], root.parent
    elif root.is_dir():
        files, base = list(_corpus_files(root)), root
    else:
        raise CorpusError(f"corpus folder not found: {root}")
    scan = CorpusScan()
    seen: dict[str, str] = {}
    for path in files:
        rel = path.relative_to(base).as_posix()
        problems_before = len(scan.problems)
        try:
            articles = list(_read_file(path, rel, scan.problems))
        except ArticleError as exc:
            scan.problems.append(exc)
            scan.failed_paths.add(rel)
            continue
        if len(scan.problems) > problems_before:
            # A bad record may be an indexed article whose line broke: never drop it for that.
            scan.failed_paths.add(rel)
        for article in articles:
            if article.id in seen:
                scan.problems.append(
                    ArticleError(
                        rel, f"duplicate article id {article.id!r} (first in {seen[article.id]})"
                    )
                )
                continue
            seen[article.id] = rel
            scan.articles.append(article)
    return scan


def _corpus_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
                continue
            yield Path(dirpath) / name


def _read_file(path: Path, rel: str, problems: list[ArticleError]) -> Iterator[Article]:
    name = path.name.lower()
    if name.endswith(TEXT_SUFFIXES):
        yield _text_article(path, rel)
    elif name.endswith(HTML_SUFFIXES):
        yield _html_article(path, rel)
    elif name.endswith(JSON_SUFFIXES):
        yield from _json_articles(path, rel, problems)
    else:
        raise ArticleError(rel, f"unsupported file type (expected {_supported()})")


def _supported() -> str:
    return ", ".join(TEXT_SUFFIXES + HTML_SUFFIXES + JSON_SUFFIXES)


def _read_bytes(path: Path, rel: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ArticleError(rel, f"cannot read file ({exc.strerror or exc})") from exc


def decode_text(data: bytes, where: str) -> str:
    """Bytes to text: UTF-8 when it is, else the detected encoding; binary is refused."""
    if b"\x00" in data[:8192]:
        raise ArticleError(where, "binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise ArticleError(where, "not text in any encoding charset-normalizer recognises")
    # Short Western text often scores the same in cp1250, cp1252, cp1257...: on a tie prefer
    # cp1252, the usual legacy encoding of news in Latin script ("São", not "Săo").
    for match in matches:
        if match.encoding == "cp1252" and (match.chaos, match.coherence) == (
            best.chaos,
            best.coherence,
        ):
            return str(match)
    return str(best)


def _sidecar(path: Path, rel: str) -> dict[str, Any]:
    meta_path = path.with_name(path.name.rsplit(".", 1)[0] + SIDECAR_SUFFIX)
    if not meta_path.exists():
        return {}
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ArticleError(rel, f"unreadable metadata file {meta_path.name}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArticleError(rel, f"metadata file {meta_path.name} is not a mapping")
    return meta


def split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str]:
    """YAML front matter between `---` lines at the very top, and the body after it."""
    if not text.startswith("---"):
        return {}, text
    match = re.match(r"\A---[ \t]*\r?\n(?:(.*?)\r?\n)?---[ \t]*(?:\r?\n|\Z)", text, re.DOTALL)
    if match is None:
        raise ArticleError(where, "front matter opened with '---' but never closed")
    try:
        meta = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise ArticleError(where, f"broken YAML front matter ({reason})") from exc
    if not isinstance(meta, dict):
        raise ArticleError(where, "front matter is not a YAML mapping")
    return meta, text[match.end() :]


def _text_article(path: Path, rel: str) -> Article:
    text = decode_text(_read_bytes(path, rel), rel)
    meta, body = split_front_matter(text, rel)
    meta = {**_sidecar(path, rel), **meta}
    return make_article(rel, meta, body, path=rel, markdown=path.suffix.lower() != ".txt")


def _html_article(path: Path, rel: str) -> Article:
    import trafilatura

    html = decode_text(_read_bytes(path, rel), rel)
    doc = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, as_dict=True
    )
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
    meta = {**{k: v for k, v in meta.items() if v}, **_sidecar(path, rel)}
    return make_article(rel, meta, str(text), path=rel)


def _json_articles(path: Path, rel: str, problems: list[ArticleError]) -> Iterator[Article]:
    data = _read_bytes(path, rel)
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ArticleError(rel, f"not a valid gzip file ({exc})") from exc
    text = decode_text(data, rel)
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        records: Iterator[tuple[str, Any]] = (
            (f"{rel}:{n}", _json_line(line, f"{rel}:{n}", problems))
            for n, line in enumerate(text.split("\n"), start=1)
            if line.strip()
        )
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArticleError(rel, f"invalid JSON ({exc.msg} at line {exc.lineno})") from exc
        items = doc if isinstance(doc, list) else [doc]
        records = ((f"{rel}[{n}]", item) for n, item in enumerate(items))
    for where, record in records:
        if record is None:
            continue
        try:
            yield _record_article(record, where, rel)
        except ArticleError as exc:
            problems.append(exc)


def _json_line(line: str, where: str, problems: list[ArticleError]) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        problems.append(ArticleError(where, f"invalid JSON line ({exc.msg})"))
        return None


def _record_article(record: Any, where: str, rel: str) -> Article:
    if not isinstance(record, dict):
        raise ArticleError(where, "expected a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ArticleError(where, "no 'text' field")
    meta = {k: record.get(k) for k in ("title", "url", "source", "published", "author")}
    if not meta["published"] and record.get("date"):
        meta["published"] = record.get("date")
    raw_id = record.get("id")
    if raw_id not in (None, ""):
        article_id = str(raw_id)
    elif isinstance(meta["url"], str) and meta["url"]:
        article_id = hashlib.sha1(meta["url"].encode()).hexdigest()[:16]
    else:
        article_id = where
    return make_article(article_id, meta, text, path=rel)


def make_article(
    article_id: str, meta: dict[str, Any], body: str, *, path: str, markdown: bool = False
) -> Article:
    """Clean `body` and normalise `meta` into an `Article`."""
    text = clean_text(body)
    if not text:
        raise ArticleError(path if article_id == path else f"{path} ({article_id})", "no text")
    url = _str(meta.get("url"))
    title = _str(meta.get("title")) or _title_from_text(text, markdown)
    published = normalise_date(meta.get("published")) or (date_from_url(url) if url else None)
    return Article(
        id=article_id,
        title=title,
        text=text,
        path=path,
        source=_str(meta.get("source")) or (outlet_from_url(url) if url else None),
        url=url,
        published=published,
        author=_author(meta.get("author")),
    )


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _author(value: Any) -> str | None:
    if isinstance(value, list):
        return _str(", ".join(str(v) for v in value))
    return _str(value)


def _title_from_text(text: str, markdown: bool) -> str:
    first = next(line for line in text.splitlines() if line.strip()).strip()
    if markdown:
        first = re.sub(r"^#{1,6}\s+", "", first).strip()
    if len(first) <= MAX_TITLE_CHARS:
        return first
    cut = first[:MAX_TITLE_CHARS].rsplit(" ", 1)[0]
    return cut + "…"


def clean_text(text: str) -> str:
    """Normalise newlines and whitespace, and drop promotion and navigation lines."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not is_promo_line(line):
            lines.append(line.rstrip())
    cleaned = "\n".join(lines)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return cleaned.strip()


def is_promo_line(line: str) -> bool:
    """Whether `line` is promotion or navigation rather than news."""
    stripped = line.strip()
    return bool(stripped) and len(stripped) <= PROMO_MAX_CHARS and bool(_PROMO.match(stripped))


def outlet_from_url(url: str) -> str | None:
    """The outlet's name from a URL's host: a known name, else the bare host."""
    host = (urlsplit(url).hostname or "").lower()
    for prefix in ("www.", "edition.", "amp.", "m.", "mobile."):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    if not host:
        return None
    for known, name in KNOWN_OUTLETS.items():
        if host == known or host.endswith("." + known):
            return name
    return host


def date_from_url(url: str) -> str | None:
    """A publication date guessed from a URL path such as `/2024/01/05/`."""
    path = urlsplit(url).path
    for pattern in _URL_DATE:
        match = pattern.search(path)
        if match:
            try:
                return date(*(int(g) for g in match.groups())).isoformat()
            except ValueError:
                continue
    return None


def normalise_date(value: Any) -> str | None:
    """An ISO date (YYYY-MM-DD) from a date, datetime or date-like string; None if unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    match = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
    if match:
        try:
            return date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            return None
    try:
        from dateutil import parser

        # dateutil fills missing parts from a default date: parse against two defaults
        # that differ in year, month and day, and refuse what does not name a whole day.
        first = parser.parse(text, default=datetime(2001, 1, 1)).date()
        second = parser.parse(text, default=datetime(2002, 2, 2)).date()
        return first.isoformat() if first == second else None
    except (ValueError, OverflowError, ImportError):
        return None

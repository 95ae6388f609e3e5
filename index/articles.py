"""Articles: reading a corpus folder (text, Markdown, HTML, JSON/JSONL) into `Article`s."""

from __future__ import annotations

import codecs
import errno
import gzip
import hashlib
import json
import os
import re
import stat
import tomllib
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from index.errors import ArticleError, CorpusError
from index.text import plain, showable

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json", ".jsonl", ".jsonl.gz", ".json.gz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
SIDECAR_SUFFIX = ".meta.yaml"
MAX_TITLE_CHARS = 160
MB = 1_000_000
# One article (a text, Markdown or HTML file, or one JSON record): far above any real story.
MAX_ARTICLE_BYTES = 10 * MB
# One JSON/JSONL file of many articles, after gunzip: it is held in memory while read.
MAX_COLLECTION_BYTES = 256 * MB
# Front matter fences at the very top of a text or Markdown file, and their language.
FRONT_MATTER_FENCES = {"---": "YAML", "+++": "TOML"}
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


@dataclass(frozen=True)
class FileLimits:
    """The most newsbot reads: one article, and one JSON/JSONL file of many (after gunzip)."""

    article_bytes: int = MAX_ARTICLE_BYTES
    collection_bytes: int = MAX_COLLECTION_BYTES


@dataclass
class CorpusScan:
    """What a corpus folder yielded: articles, and problems that did not stop the scan."""

    articles: list[Article] = field(default_factory=list)
    problems: list[ArticleError] = field(default_factory=list)
    # Files that failed as a whole or in part: their previously indexed articles are kept.
    failed_paths: set[str] = field(default_factory=set)
    # Folders that could not be listed: the same for every file under them.
    failed_dirs: set[str] = field(default_factory=set)

    def failed(self, path: str) -> bool:
        """Whether the corpus file `path` could not be read fully this time."""
        return path in self.failed_paths or any(
            path.startswith(folder + "/") for folder in self.failed_dirs
        )


def scan_corpus(
    root: Path,
    *,
    indexed_paths: Mapping[str, str] | None = None,
    limits: FileLimits | None = None,
) -> CorpusScan:
    """Read every article under `root` (any depth).

    Args:
        root: the corpus folder, or a single file of articles.
        indexed_paths: article id → the file it was indexed from; when two files give the
            same id, the one the index already holds keeps it.
        limits: the largest article and JSON/JSONL file read (default: the MAX_* constants).

    Returns:
        The articles in a stable order, and the files, folders or records that could not be
        read, each named by its path under `root` (and line, for JSONL).

    Raises:
        CorpusError: `root` is not a readable folder.
    """
    limits = limits or FileLimits()
    scan = CorpusScan()
    files: Iterator[Path]
    if root.is_file():  # one file of articles (a .jsonl.gz, say) is a corpus too
        files, base = iter([root]), root.parent
    elif root.is_dir():
        files, base = _corpus_files(root, scan), root
    else:
        raise CorpusError(f"corpus folder not found: {root}")
    indexed = indexed_paths or {}
    seen: dict[str, tuple[str, int]] = {}  # article id → where it was read, its position
    for path in files:
        rel = path.relative_to(base).as_posix()
        try:
            items = list(_read_file(path, rel, limits))
        except ArticleError as exc:
            scan.problems.append(exc)
            scan.failed_paths.add(rel)
            continue
        for where, item in items:
            if isinstance(item, ArticleError):
                # A bad record may be an indexed article whose line broke: never drop it for that.
                scan.problems.append(item)
                scan.failed_paths.add(rel)
            elif item.id not in seen:
                seen[item.id] = (where, len(scan.articles))
                scan.articles.append(item)
            else:
                first, position = seen[item.id]
                loser, loser_path, note = where, rel, f"first in {first}"
                if indexed.get(item.id) == rel != scan.articles[position].path:
                    # A new file repeating an indexed id must not take the article over.
                    loser, loser_path = first, scan.articles[position].path
                    note = f"the index has it from {where}"
                    scan.articles[position] = item
                    seen[item.id] = (where, position)
                scan.problems.append(
                    ArticleError(
                        loser, f"duplicate article id {item.id!r} ({note})", path=loser_path
                    )
                )
    return scan


def _corpus_files(root: Path, scan: CorpusScan) -> Iterator[Path]:
    """Files under `root`, in a stable order; folders that can't be read go to `scan`."""
    yield from _folder_files(root, "", (_inode(root.stat()),), scan)


def _inode(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _folder_files(
    folder: Path, rel: str, ancestors: tuple[tuple[int, int], ...], scan: CorpusScan
) -> Iterator[Path]:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        if not rel:
            raise CorpusError(
                f"cannot read the corpus folder {folder}: {exc.strerror or exc}"
            ) from exc
        scan.problems.append(ArticleError(rel, f"cannot list folder: {exc.strerror or exc}"))
        scan.failed_dirs.add(rel)
        return
    folders: list[tuple[os.DirEntry[str], str]] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        entry_rel = f"{rel}/{entry.name}" if rel else entry.name
        try:
            is_dir = entry.is_dir()  # follows symlinks; a broken or looping one is read as a file
        except OSError:
            is_dir = False
        if not _utf8_name(entry_rel):
            # The path is the article id, and ids are UTF-8 in the catalog and in citations.
            what = "folder" if is_dir else "file"
            printable = os.fsencode(entry_rel).decode("utf-8", "replace")
            scan.problems.append(ArticleError(printable, f"{what} name is not UTF-8: rename it"))
        elif is_dir:
            folders.append((entry, entry_rel))
        elif not entry.name.endswith(SIDECAR_SUFFIX):
            yield Path(entry.path)
    for entry, entry_rel in folders:
        try:
            inode = _inode(entry.stat())
        except OSError as exc:
            scan.problems.append(ArticleError(entry_rel, f"cannot open folder: {exc.strerror}"))
            scan.failed_dirs.add(entry_rel)
            continue
        if inode in ancestors:
            target = os.readlink(entry.path) if entry.is_symlink() else entry_rel
            scan.problems.append(
                ArticleError(
                    entry_rel, f"symlink loop: it points back to a folder above it ({target})"
                )
            )
            continue
        yield from _folder_files(Path(entry.path), entry_rel, (*ancestors, inode), scan)


def _utf8_name(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Read = tuple[str, Article | ArticleError]
"""Where in the file (the path, or path:line), and the article or why there is none."""


def _read_file(path: Path, rel: str, limits: FileLimits) -> Iterator[Read]:
    name = path.name.lower()
    if name.endswith(TEXT_SUFFIXES + HTML_SUFFIXES):
        data = _read_bytes(path, rel, limits.article_bytes, "an article file")
    elif name.endswith(JSON_SUFFIXES):
        data = _read_bytes(path, rel, limits.collection_bytes, "a JSON/JSONL file")
    else:
        raise ArticleError(rel, f"unsupported file type (expected {_supported()})")
    if not data.strip():
        raise ArticleError(rel, "empty file" if not data else "empty file (only whitespace)")
    if name.endswith(TEXT_SUFFIXES):
        yield rel, _text_article(path, rel, data, limits)
    elif name.endswith(HTML_SUFFIXES):
        yield rel, _html_article(path, rel, data, limits)
    else:
        yield from _json_articles(name, rel, data, limits)


def _supported() -> str:
    return ", ".join(TEXT_SUFFIXES + HTML_SUFFIXES + JSON_SUFFIXES)


def _read_bytes(path: Path, rel: str, limit: int, what: str) -> bytes:
    """The file's bytes (gunzipped for .gz); not a regular file, or over `limit`, is refused."""
    try:
        # O_NONBLOCK: opening a named pipe would otherwise wait for a writer, forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ArticleError(rel, _open_failure(path, exc)) from exc
    gunzip = path.name.lower().endswith(".gz")
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArticleError(rel, f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > limit:
            raise ArticleError(rel, _too_large(info.st_size, limit, what))
        try:
            data = (gzip.GzipFile(fileobj=handle) if gunzip else handle).read(limit + 1)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ArticleError(rel, f"not a valid gzip file ({exc})") from exc
        except OSError as exc:
            raise ArticleError(rel, f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise ArticleError(rel, _too_large(None, limit, what))
    return data


def _too_large(size: int | None, limit: int, what: str) -> str:
    actual = f"{size / MB:.1f} MB" if size is not None else "once gunzipped"
    return f"file too large ({actual}, over newsbot's {limit / MB:g} MB limit for {what})"


def _open_failure(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop: following its links never reaches a file"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"broken symlink: its target {os.readlink(path)} does not exist"
    return f"cannot read file: {exc.strerror or exc}"


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"


def decode_text(data: bytes, where: str) -> str:
    """Bytes to text: by BOM, as UTF-8 or BOM-less UTF-16, else detected; binary is refused."""
    kind = _binary_signature(data)
    if kind:
        raise ArticleError(where, f"binary file ({kind}), not text")
    encoding = _unicode_encoding(data)
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


def _binary_signature(data: bytes) -> str | None:
    return next((kind for magic, kind in BINARY_SIGNATURES.items() if data.startswith(magic)), None)


def _unicode_encoding(data: bytes) -> str | None:
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


def _detect_encoding(data: bytes) -> str | None:
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
    detected = _detect_encoding(data)
    try:
        if detected is None:
            raise UnicodeError
        return data.decode(detected)
    except (UnicodeError, LookupError):
        raise ArticleError(where, "not text: no encoding fits it (binary data?)") from None


def _looks_binary(text: str) -> bool:
    sample = text[:BINARY_SNIFF_CHARS]
    return len(_CONTROL.findall(sample)) > BINARY_CONTROL_SHARE * len(sample)


class _MetadataLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases: metadata never needs them, and a few lines of
    nested aliases ("billion laughs") expand to more text than memory holds once printed."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases are not allowed: found *{event.anchor}", event.start_mark
            )
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_MetadataLoader)  # a SafeLoader: builds plain data only


def _sidecar(path: Path, rel: str, limits: FileLimits) -> dict[str, Any]:
    meta_path = path.with_name(path.name.rsplit(".", 1)[0] + SIDECAR_SUFFIX)
    if not meta_path.exists():
        return {}
    try:
        data = _read_bytes(meta_path, meta_path.name, limits.article_bytes, "a metadata file")
        meta = _load_yaml(decode_text(data, meta_path.name))
    except ArticleError as exc:
        raise ArticleError(rel, f"unreadable metadata file {exc}") from exc
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise ArticleError(rel, f"unreadable metadata file {meta_path.name}: {reason}") from exc
    if not isinstance(meta, dict):
        raise ArticleError(rel, f"metadata file {meta_path.name} is not a mapping")
    return meta


def split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str]:
    """YAML (`---`) or TOML (`+++`) front matter at the very top, and the body after it."""
    opening = re.match(r"\A(---|\+\+\+)[ \t]*\r?\n", text)
    if opening is None:
        return {}, text
    fence = opening.group(1)
    language = FRONT_MATTER_FENCES[fence]
    fenced = re.escape(fence)
    match = re.match(
        rf"\A{fenced}[ \t]*\r?\n(?:(.*?)\r?\n)?{fenced}[ \t]*(?:\r?\n|\Z)", text, re.DOTALL
    )
    if match is None:
        raise ArticleError(where, f"front matter opened with '{fence}' but never closed")
    raw = match.group(1) or ""
    try:
        meta = (_load_yaml(raw) if language == "YAML" else tomllib.loads(raw)) or {}
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise ArticleError(where, f"broken {language} front matter ({reason})") from exc
    if not isinstance(meta, dict):
        raise ArticleError(where, f"front matter is not a {language} mapping")
    return meta, text[match.end() :]


def _text_article(path: Path, rel: str, data: bytes, limits: FileLimits) -> Article:
    text = decode_text(data, rel)
    meta, body = split_front_matter(text, rel)
    meta = {**_sidecar(path, rel, limits), **meta}
    return make_article(rel, meta, body, path=rel, markdown=path.suffix.lower() != ".txt")


def _html_article(path: Path, rel: str, data: bytes, limits: FileLimits) -> Article:
    import trafilatura

    html = decode_text(data, rel)
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
    meta = {**{k: v for k, v in meta.items() if v}, **_sidecar(path, rel, limits)}
    return make_article(rel, meta, str(text), path=rel)


def _json_articles(name: str, rel: str, data: bytes, limits: FileLimits) -> Iterator[Read]:
    records: Iterator[tuple[str, Any]]
    if name.endswith(JSONL_SUFFIXES):
        records = (
            (f"{rel}:{n}", _json_line(line, f"{rel}:{n}", rel))
            for n, line in _jsonl_lines(data, rel, limits)
        )
    else:
        text = decode_text(data, rel)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArticleError(rel, f"invalid JSON ({exc.msg} at line {exc.lineno})") from exc
        items = doc if isinstance(doc, list) else [doc]
        records = ((f"{rel}[{n}]", item) for n, item in enumerate(items))
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
    encoding = _unicode_encoding(data)
    if encoding not in (None, "utf-8-sig"):
        # UTF-16/32: a newline byte can be half a character, so decode the whole file first.
        lines = [line.encode("utf-8") for line in decode_text(data, rel).split("\n")]
    else:
        kind = _binary_signature(data)
        if kind:
            raise ArticleError(rel, f"binary file ({kind}), not text")
        lines = data.removeprefix(codecs.BOM_UTF8).split(b"\n")
    read: dict[int, str | ArticleError] = {}
    legacy: list[int] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{rel}:{n}"
        if len(line) > limits.article_bytes:
            read[n] = ArticleError(
                where,
                f"line too large ({len(line) / MB:.1f} MB, over newsbot's "
                f"{limits.article_bytes / MB:g} MB limit for one article)",
                path=rel,
            )
        elif b"\x00" in line:
            read[n] = ArticleError(where, "binary data (NUL bytes), not a JSON line", path=rel)
        else:
            try:
                read[n] = line.decode("utf-8")
            except UnicodeDecodeError:
                legacy.append(n)
    if legacy:
        # Lines that are not UTF-8 share one legacy encoding, detected from all of them.
        detected = _detect_encoding(b"\n".join(lines[n - 1] for n in legacy))
        for n in legacy:
            try:
                if detected is None:
                    raise UnicodeError
                read[n] = lines[n - 1].decode(detected)
            except UnicodeError:
                read[n] = ArticleError(
                    f"{rel}:{n}", "not text: no encoding fits the line", path=rel
                )
    if read and all(isinstance(item, ArticleError) for item in read.values()) and b"\x00" in data:
        raise ArticleError(rel, "binary file (NUL bytes), not text")
    yield from sorted(read.items())


def _json_line(line: str | ArticleError, where: str, rel: str) -> Any:
    if isinstance(line, ArticleError):
        return line
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return ArticleError(where, f"invalid JSON line ({exc.msg})", path=rel)


def _record_article(record: Any, where: str, rel: str, limits: FileLimits) -> Article:
    if not isinstance(record, dict):
        raise ArticleError(where, "expected a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ArticleError(where, "no 'text' field")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.article_bytes:
        raise ArticleError(
            where,
            f"'text' too large ({size / MB:.1f} MB, over newsbot's "
            f"{limits.article_bytes / MB:g} MB limit for one article)",
        )
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
        where = path if article_id == path else f"{path} ({article_id})"
        raise ArticleError(where, "no text", path=path)
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
    text = plain(str(value))
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
    """Normalise newlines and whitespace, drop control and invisible characters (a terminal
    escape in a feed must not reach anyone's screen), and promotion and navigation lines."""
    lines = []
    text = showable(text.replace("\r\n", "\n").replace("\r", "\n"))
    for line in text.split("\n"):
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

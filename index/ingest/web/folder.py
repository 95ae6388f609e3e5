"""Where articles fetched from the web live in the corpus: `web/HOST/DATE-SLUG.md`, Markdown
with YAML front matter, written atomically, found again by their URL."""

from __future__ import annotations

import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from index.disk import writing
from index.errors import ArticleError
from index.ingest.corpus.decoding import decode_text
from index.ingest.corpus.files import MAX_ARTICLE_BYTES, read_bytes
from index.ingest.corpus.frontmatter import split_front_matter
from index.ingest.folders import WEB_FOLDER
from index.ingest.web.pages import WebArticle

# Under the corpus folder; `newsbot index` reads it as it reads every other folder.
SLUG_CHARS = 60
UNDATED = "undated"
# A new file's permissions (a temp file starts as 0600): readable by the bot's user too.
NEW_FILE_MODE = 0o644
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_NOT_HOST = re.compile(r"[^a-z0-9.-]+")


class Saved(StrEnum):
    """What saving an article did to the corpus."""

    ADDED = "added"
    UPDATED = "updated"  # its text changed: the file was rewritten
    UNCHANGED = "unchanged"  # the same text: the file was not touched


class WebFolder:
    """The corpus's `web/` folder: one Markdown file per article, found by its URL.

    Args:
        corpus_dir: the corpus folder; articles go under `corpus_dir/web/`.
    """

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = corpus_dir
        self.root = corpus_dir / WEB_FOLDER
        self._by_url: dict[str, Path] | None = None

    def find(self, *urls: str) -> Path | None:
        """The file of the article fetched from any of `urls`, wherever it was moved under
        `web/` and whatever it was renamed; None if there is none."""
        known = self._urls()
        return next((known[key] for key in map(url_key, urls) if key in known), None)

    def save(self, article: WebArticle, *also: str) -> tuple[Saved, Path]:
        """Write `article` into the corpus, unless its file already holds the same text.

        Args:
            article: the article.
            also: other URLs it is known by (the address asked for, before redirects).

        Returns:
            What was done, and the file (under the corpus folder).

        Raises:
            DiskWriteError: the file cannot be written; nothing in the corpus changed.
        """
        existing = self.find(article.url, *also)
        if existing is not None and _body(existing) == article.text:
            return Saved.UNCHANGED, existing
        path = existing or self._new_path(article)
        with writing(path, setting="NEWSBOT_CORPUS_DIR", then="run `newsbot add` again"):
            write_atomically(path, render(article))
        self._urls()[url_key(article.url)] = path
        for url in also:
            self._urls().setdefault(url_key(url), path)
        return (Saved.UPDATED if existing else Saved.ADDED), path

    def forget(self, path: Path) -> None:
        """Forget the article file `path` (deleted)."""
        if self._by_url is not None:
            self._by_url = {url: p for url, p in self._by_url.items() if p != path}

    def _new_path(self, article: WebArticle) -> Path:
        """`web/HOST/DATE-SLUG.md`, numbered if a file of another article has that name."""
        folder = self.root / _host_folder(article.url)
        name = slug(article.title) or slug(_last_segment(article.url)) or "article"
        stem = f"{article.published or UNDATED}-{name}"
        path = folder / f"{stem}.md"
        number = 2
        while path.exists():
            path = folder / f"{stem}-{number}.md"
            number += 1
        return path

    def _urls(self) -> dict[str, Path]:
        """URL key → the file of its article, read once from the files' front matter."""
        if self._by_url is None:
            self._by_url = {}
            for path in markdown_files(self.root):
                url = front_matter(path).get("url")
                if isinstance(url, str) and url:
                    self._by_url.setdefault(url_key(url), path)
        return self._by_url


def render(article: WebArticle) -> str:
    """The article as Markdown with YAML front matter, as the corpus reader reads it."""
    meta = {
        "title": article.title,
        "source": article.source,
        "url": article.url,
        "published": article.published,
        "author": article.author,
        "fetched": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    front = yaml.safe_dump(
        {k: v for k, v in meta.items() if v},
        allow_unicode=True,
        sort_keys=False,
        width=10_000,
    )
    return f"---\n{front}---\n\n{article.text}\n"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file renamed over it: a reader (`newsbot
    index`, a crash) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE
    # A dot name: the corpus scan skips it, should a crash leave it behind.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def url_key(url: str) -> str:
    """`url` as articles are matched by: host in lower case, tracking parameters (utm_...)
    and the #fragment dropped (courlan)."""
    from courlan import normalize_url

    try:
        normal = normalize_url(url.strip())
    except (ValueError, AttributeError):
        normal = url.strip()
    normal = normal.split("#", 1)[0]
    parts = urlsplit(normal)
    return normal + "/" if parts.netloc and not parts.path and not parts.query else normal


def slug(text: str) -> str:
    """`text` as a file name: ASCII letters and digits joined by hyphens, at most
    `SLUG_CHARS`, cut at a hyphen."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    if len(words) > SLUG_CHARS:
        words = words[:SLUG_CHARS].rsplit("-", 1)[0]
    return words


def _host_folder(url: str) -> str:
    """The folder of a URL's host: `www.bbc.co.uk` → `bbc.co.uk`; never a dot name."""
    host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
    return _NOT_HOST.sub("_", host).strip(".") or "unknown-host"


def _last_segment(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def markdown_files(root: Path) -> Iterator[Path]:
    """The `.md` files under `root`, at any depth, dot names skipped (as the corpus scan
    does)."""
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".md") and not name.startswith("."):
                yield Path(folder) / name


def front_matter(path: Path) -> dict[str, object]:
    """A file's front matter; {} if it has none or cannot be read."""
    try:
        meta, _ = split_front_matter(_text(path), str(path))
    except ArticleError:
        return {}
    return meta


def _body(path: Path) -> str | None:
    """A file's text after its front matter; None if it cannot be read."""
    try:
        _, body = split_front_matter(_text(path), str(path))
    except ArticleError:
        return None
    return body.strip()


def _text(path: Path) -> str:
    return decode_text(read_bytes(path, str(path), MAX_ARTICLE_BYTES, "an article file"), str(path))

"""Scanning a corpus folder: walking it, reading each file, settling duplicate article ids."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from index.errors import ArticleError, CorpusError
from index.ingest.corpus.article import Article
from index.ingest.corpus.file_stats import FileStat, KnownFiles, file_stat
from index.ingest.corpus.files import FileLimits
from index.ingest.corpus.frontmatter import SIDECAR_SUFFIX, sidecar_path
from index.ingest.corpus.readers import read_file
from index.ingest.folders import NOT_ARTICLES

# newsbot's own files at the top of the corpus folder, which are not articles: the list of
# feeds `newsbot sync` polls (index/ingest/web/feedlist.py).


@dataclass
class CorpusScan:
    """What a corpus folder yielded: articles, and problems that did not stop the scan."""

    articles: list[Article] = field(default_factory=list)
    problems: list[ArticleError] = field(default_factory=list)
    # Files that failed as a whole or in part: their previously indexed articles are kept.
    failed_paths: set[str] = field(default_factory=set)
    # Folders that could not be listed: the same for every file under them.
    failed_dirs: set[str] = field(default_factory=set)
    # Articles not read: their file's stat is as recorded, so they are as the index holds
    # them (article id → file).
    unread: dict[str, str] = field(default_factory=dict)
    # The stat of every file read without a problem or left unread, taken before reading.
    stats: dict[str, FileStat] = field(default_factory=dict)

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
    index_dir: Path | None = None,
    known: KnownFiles | None = None,
) -> CorpusScan:
    """Read every article under `root` (any depth).

    A symlink is followed only to a file or folder inside `root`, and never into
    `index_dir`; the index folder itself is not read, should it lie inside the corpus.

    Args:
        root: the corpus folder, or a single file of articles.
        indexed_paths: article id → the file it was indexed from; when two files give the
            same id, the one the index already holds keeps it.
        limits: the largest article and JSON/JSONL file read (default: the MAX_* constants).
        index_dir: the index folder, never read as part of the corpus.
        known: the files the index was last checked against: a file whose stat (and its
            sidecar's) is as recorded there is not read; its articles go to `unread`.

    Returns:
        The articles in a stable order, and the files, folders or records that could not be
        read, each named by its path under `root` (and line, for JSONL).

    Raises:
        CorpusError: `root` is not a readable folder.
    """
    limits = limits or FileLimits()
    scan = CorpusScan()
    files: Iterator[_Listed]
    if root.is_file():  # one file of articles (a .jsonl.gz, say) is a corpus too
        files = iter([_Listed(str(root), root.name, sidecar_path(root).exists())])
    elif root.is_dir():
        files = _corpus_files(root, _Bounds.of(root, index_dir), scan)
    else:
        raise CorpusError(f"corpus folder not found: {root}")
    indexed = indexed_paths or {}
    seen: dict[str, tuple[str, int]] = {}  # article id → where it was read, its position
    articles: list[Article | None] = []  # None: an article an unread file took back
    read_stats: dict[str, FileStat] = {}
    for listed in files:
        rel = listed.rel
        now = file_stat(listed.path, listed.sidecar)  # before reading: a write shows next time
        unread = known.unchanged(rel, now) if known else None
        if unread is not None and now is not None:
            scan.stats[rel] = now
            for aid in unread:
                _take_unread(scan, articles, seen, aid, rel)
            continue
        try:
            items = list(read_file(Path(listed.path), rel, limits))
        except ArticleError as exc:
            scan.problems.append(exc)
            scan.failed_paths.add(rel)
            continue
        if now is not None:
            read_stats[rel] = now
        for where, item in items:
            if isinstance(item, ArticleError):
                # A bad record may be an indexed article whose line broke: never drop it for that.
                scan.problems.append(item)
                scan.failed_paths.add(rel)
            else:
                _take_read(scan, articles, seen, indexed, where, rel, item)
    scan.articles = [a for a in articles if a is not None]
    # A file that had a problem is read again next time, so that its problem is told again.
    troubled = scan.failed_paths | {p.path for p in scan.problems}
    scan.stats.update((rel, st) for rel, st in read_stats.items() if rel not in troubled)
    return scan


def _take_read(  # noqa: PLR0913
    scan: CorpusScan,
    articles: list[Article | None],
    seen: dict[str, tuple[str, int]],
    indexed: Mapping[str, str],
    where: str,
    rel: str,
    item: Article,
) -> None:
    """Count the article `item`, read at `where` in file `rel`, in; or settle its id's
    duplicate: the file the index holds it from keeps it, else the first one read."""
    if item.id not in seen:
        seen[item.id] = (where, len(articles))
        articles.append(item)
        return
    first, position = seen[item.id]
    holder = articles[position] if position >= 0 else None
    loser, loser_path, note = where, rel, f"first in {first}"
    if holder is None:
        note = f"the index has it from {first}"  # an unread file's
    elif indexed.get(item.id) == rel != holder.path:
        # A new file repeating an indexed id must not take the article over.
        loser, loser_path = first, holder.path
        note = f"the index has it from {where}"
        articles[position] = item
        seen[item.id] = (where, position)
    scan.problems.append(
        ArticleError(loser, f"duplicate article id {item.id!r} ({note})", path=loser_path)
    )


def _take_unread(
    scan: CorpusScan,
    articles: list[Article | None],
    seen: dict[str, tuple[str, int]],
    aid: str,
    rel: str,
) -> None:
    """Count the indexed article `aid` of the unread file `rel` in; the index holds it from
    `rel`, so a file read before that repeats its id loses it."""
    if aid in seen:
        first, position = seen[aid]
        holder = articles[position]
        if holder is not None:
            articles[position] = None
            scan.problems.append(
                ArticleError(
                    first,
                    f"duplicate article id {aid!r} (the index has it from {rel})",
                    path=holder.path,
                )
            )
    seen[aid] = (rel, -1)
    scan.unread[aid] = rel


@dataclass(frozen=True)
class _Bounds:
    """Where the corpus walk may go: inside the corpus folder, never into the index folder."""

    corpus: str
    index: str | None
    # The index folder's (device, inode), if it exists: the index folder is known by it.
    index_inode: tuple[int, int] | None = None

    @classmethod
    def of(cls, root: Path, index_dir: Path | None) -> _Bounds:
        corpus = os.path.realpath(root)
        if index_dir is None or _within(corpus, os.path.realpath(index_dir)):
            return cls(corpus, None)  # a corpus inside the index folder: its own bounds only
        try:
            inode: tuple[int, int] | None = _inode(os.stat(index_dir))
        except OSError:
            inode = None  # not made yet
        return cls(corpus, os.path.realpath(index_dir), inode)

    def refusal(self, path: str, is_link: bool | None = None) -> str | None:
        """Why the walk does not follow `path` if it is a symlink (`is_link`, when the listing
        said so already); None if it may."""
        if not (os.path.islink(path) if is_link is None else is_link):
            return None
        target = os.path.realpath(path)
        if self.index is not None and _within(target, self.index):
            where = "into the index folder"
        elif not _within(target, self.corpus):
            where = "outside the corpus"
        else:
            return None
        return f"symlink leads {where} ({_link_text(path)})"

    def file_refusal(self, path: str, names: Set[str] | None = None) -> str | None:
        """Why the article file `path` is not read: it, or its sidecar, is a symlink that
        leads out of bounds; None if it may be read. `names`: its folder's listing, when at
        hand (a sidecar not in it is not there)."""
        sidecar = sidecar_path(Path(path))
        if names is not None and sidecar.name not in names:
            return None
        refusal = self.refusal(str(sidecar))
        if refusal:
            return f"its metadata file {sidecar.name}: {refusal}"
        return None

    def is_index(self, entry: os.DirEntry[str]) -> bool:
        """Whether `entry` is the index folder itself (an index kept inside its corpus)."""
        if self.index_inode is None:
            return False
        try:
            return _inode(entry.stat()) == self.index_inode
        except OSError:
            return False


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _link_text(path: str) -> str:
    """Where the symlink `path` says it points, as one printable line."""
    try:
        return os.fsencode(os.readlink(path)).decode("utf-8", "replace")
    except OSError:  # replaced by a file since it was listed
        return "?"


# A folder the walk is still to read: its entry (None for the corpus folder), its path under
# the corpus, and the folders above it (device, inode).
_Pending = tuple[os.DirEntry[str] | None, str, tuple[tuple[int, int], ...]]


class _Listed(NamedTuple):
    """A corpus file the walk found: its path, its path under the corpus folder, and whether
    its folder's listing holds a sidecar for it."""

    path: str
    rel: str
    sidecar: bool


def _corpus_files(root: Path, bounds: _Bounds, scan: CorpusScan) -> Iterator[_Listed]:
    """Files under `root`, in a stable order (a folder's files, then each of its folders);
    folders that can't be read go to `scan`.

    A loop over a stack rather than recursion: folders may nest deeper than Python recurses.
    """
    pending: list[_Pending] = [(None, "", ())]
    while pending:
        entry, rel, ancestors = pending.pop()
        if entry is None:
            folder, inode = root, _inode(root.stat())
        else:
            folder, found = Path(entry.path), _subfolder_inode(entry, rel, ancestors, scan)
            if found is None:
                continue
            inode = found
        folders: list[_Pending] = []
        listing = _listing(folder, rel, scan)
        names = {child.name for child in listing}
        for child in listing:
            child_rel = f"{rel}/{child.name}" if rel else child.name
            kind = _entry_kind(child, child_rel, bounds, scan, names)
            if kind == "folder":
                folders.append((child, child_rel, (*ancestors, inode)))
            elif kind == "file":
                yield _Listed(child.path, child_rel, _sidecar_name(child.name) in names)
        pending.extend(reversed(folders))


def _inode(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _listing(folder: Path, rel: str, scan: CorpusScan) -> list[os.DirEntry[str]]:
    """The entries of `folder` by name; none if it can't be listed (the problem in `scan`).

    Raises:
        CorpusError: the corpus folder itself (`rel` empty) can't be listed.
    """
    try:
        with os.scandir(folder) as listing:
            return sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        if not rel:
            raise CorpusError(
                f"cannot read the corpus folder {folder}: {exc.strerror or exc}"
            ) from exc
        scan.problems.append(ArticleError(rel, f"cannot list folder: {exc.strerror or exc}"))
        scan.failed_dirs.add(rel)
        return []


def _sidecar_name(name: str) -> str:
    """The sidecar's name of the article file `name` (as `sidecar_path`)."""
    return name.rsplit(".", 1)[0] + SIDECAR_SUFFIX


def _entry_kind(
    entry: os.DirEntry[str], rel: str, bounds: _Bounds, scan: CorpusScan, names: Set[str]
) -> str | None:
    """What the walk does with `entry` (at `rel`): "folder" or "file" to read it; None to pass
    over it (hidden, a sidecar, the index folder) or, its problem put in `scan`, refuse it."""
    is_dir = _is_dir(entry)
    if entry.name.startswith(".") or (not is_dir and entry.name.endswith(SIDECAR_SUFFIX)):
        return None  # a sidecar is read with its article, and its problems are the article's
    if rel in NOT_ARTICLES and not is_dir:
        return None
    printable = os.fsencode(rel).decode("utf-8", "replace")
    refusal = bounds.refusal(entry.path, entry.is_symlink()) or (
        None if is_dir else bounds.file_refusal(entry.path, names)
    )
    if refusal:
        scan.problems.append(ArticleError(printable, refusal))
    elif not _utf8_name(rel):
        # The path is the article id, and ids are UTF-8 in the catalog and in citations.
        what = "folder" if is_dir else "file"
        scan.problems.append(ArticleError(printable, f"{what} name is not UTF-8: rename it"))
    elif not is_dir:
        return "file"
    elif not bounds.is_index(entry):
        return "folder"
    return None


def _subfolder_inode(
    entry: os.DirEntry[str], rel: str, ancestors: tuple[tuple[int, int], ...], scan: CorpusScan
) -> tuple[int, int] | None:
    """The folder's inode, or None if it can't be opened or is one of its own ancestors."""
    try:
        inode = _inode(entry.stat())
    except OSError as exc:
        scan.problems.append(ArticleError(rel, f"cannot open folder: {exc.strerror}"))
        scan.failed_dirs.add(rel)
        return None
    if inode in ancestors:
        target = os.readlink(entry.path) if entry.is_symlink() else rel
        scan.problems.append(
            ArticleError(rel, f"symlink loop: it points back to a folder above it ({target})")
        )
        return None
    return inode


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether `entry` is a folder, following symlinks; a broken or looping one is a file."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _utf8_name(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

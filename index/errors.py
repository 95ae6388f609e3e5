"""Domain errors. Adapters translate them: the CLI prints one line, the bot a short reply."""

from __future__ import annotations

from index.redaction import without_passwords


class NewsbotError(Exception):
    """Base class: an expected failure whose message is fit to show a user as is."""


class ConfigError(NewsbotError):
    """A setting is missing or invalid."""


class CorpusError(NewsbotError):
    """The corpus cannot be read as a whole (missing directory, nothing to index...)."""


class ArticleError(NewsbotError):
    """One corpus file, folder or record could not be turned into articles.

    `where` names it (a path under the corpus, with `:line` for a JSONL line); `path` is the
    file or folder it is in. The message is one line, whatever the file name or reason hold.
    """

    def __init__(self, where: str, reason: str, *, path: str | None = None) -> None:
        where, reason = _one_line(where), _one_line(reason)
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.path = _one_line(path) if path is not None else where

    @property
    def whole_file(self) -> bool:
        """Whether a whole file (or folder) was skipped, rather than one record of it."""
        return self.where == self.path


class CorpusProblemsError(NewsbotError):
    """`newsbot index --strict` met corpus files or records it could not read."""

    def __init__(self, problems: list[ArticleError]) -> None:
        files = len({p.path for p in problems})
        super().__init__(
            f"--strict: {len(problems)} problem{'s' if len(problems) != 1 else ''} in "
            f"{files} corpus file{'s' if files != 1 else ''}; the index was not changed"
        )
        self.problems = problems


class IndexMissingError(NewsbotError):
    """There is no index yet where the settings point."""


class IndexMismatchError(NewsbotError):
    """The index was built with other settings (model, dimension, chunking)."""


class SegmentMissingError(IndexMissingError):
    """A segment the generation names is not in the index folder (deleted, or a copy of the
    folder not yet complete)."""


class IndexDamagedError(NewsbotError):
    """A file of the index in service is damaged: missing, cut short, changed since it was
    written, or unreadable. The message is one line naming the file and the command that
    repairs it (`newsbot index`, or `newsbot index --rebuild` when the generation's own
    catalog is what is damaged)."""


class SegmentDamagedError(IndexDamagedError):
    """A file of one of the generation's segments is damaged; `newsbot index` repairs it.

    `where` is the segment's folder in the index folder (`segments/seg-000004`), `segment`
    its name, and `damage` what is wrong, naming the file (`bm25/vocab.index.json is
    missing`)."""

    def __init__(self, index_dir: object, where: str, damage: str) -> None:
        where, damage = _one_line(where), _one_line(damage)
        super().__init__(
            f"the index in {index_dir} is damaged: {where}/{damage}: "
            "run `newsbot index` to repair it"
        )
        self.where = where
        self.segment = where.rpartition("/")[2]
        self.damage = damage


class IndexBusyError(NewsbotError):
    """Another process is writing the index."""


class CorpusBusyError(NewsbotError):
    """Another process is writing fetched articles (or feeds.yaml) into the corpus."""


class StoreUnavailableError(NewsbotError):
    """The vector store cannot be reached (a Chroma server that is down) or opened (no room
    for a reader's copy of the embedded store)."""


class VectorsMissingError(StoreUnavailableError):
    """The vector store is up but lacks the index's collection (a server that lost its data,
    a deleted folder); `newsbot index` restores it from the catalog."""


class ModelLoadError(NewsbotError):
    """The embedding model cannot be loaded."""


class DiskWriteError(NewsbotError):
    """A file newsbot writes could not be written: no space left, no permission, a read-only
    file system or another OS error. `path` names what was being written; the message says
    what became of the unfinished work and what to do."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(_one_line(message))
        self.path = path


class HostRefusedError(NewsbotError):
    """A web address newsbot will not fetch from: its host is not found, or it resolves to
    an address that is not allowed (private, loopback, link-local...; see
    NEWSBOT_FETCH_ALLOW_PRIVATE). Never retried."""


class PageError(NewsbotError):
    """A web page could not be fetched or made into an article. `url` names it and `reason`
    says why, each on one line, any password in them masked; the message is `URL: reason`."""

    def __init__(self, url: str, reason: str) -> None:
        url, reason = (without_passwords(_one_line(text)) for text in (url, reason))
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


class FeedListError(NewsbotError):
    """The list of feeds (`feeds.yaml` in the corpus folder) cannot be read or changed as
    asked: broken YAML, an entry without a `url`, a feed added twice or not there to
    remove."""


class QuestionError(NewsbotError):
    """A question that cannot be asked: nothing is left of it once cleaned."""


class QuestionTooLongError(QuestionError):
    """A question longer than the limit: it is refused, never cut.

    `length` is the cleaned question's length in characters, `limit` the longest allowed.
    """

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"the question is too long: {length:,} characters, at most {limit:,}")
        self.length = length
        self.limit = limit

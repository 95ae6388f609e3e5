"""Domain errors. Adapters translate them: the CLI prints one line, the bot a short reply."""

from __future__ import annotations


class NewsbotError(Exception):
    """Base class: an expected failure whose message is fit to show a user as is."""


class ConfigError(NewsbotError):
    """A setting is missing or invalid."""


class CorpusError(NewsbotError):
    """The corpus cannot be read as a whole (missing directory, nothing to index...)."""


class ArticleError(NewsbotError):
    """One corpus file or record could not be turned into an article."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class IndexMissingError(NewsbotError):
    """There is no index yet where the settings point."""


class IndexMismatchError(NewsbotError):
    """The index was built with other settings (model, dimension, chunking)."""


class IndexBusyError(NewsbotError):
    """Another process is writing the index."""


class StoreUnavailableError(NewsbotError):
    """The vector store (a Chroma server) cannot be reached."""


class ModelLoadError(NewsbotError):
    """The embedding model cannot be loaded."""

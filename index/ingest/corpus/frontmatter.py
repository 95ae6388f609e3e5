"""Metadata beside an article's text: front matter at its top, or a `.meta.yaml` sidecar."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from index.errors import ArticleError
from index.ingest.corpus.decoding import decode_text
from index.ingest.corpus.files import FileLimits, read_bytes

SIDECAR_SUFFIX = ".meta.yaml"
# Front matter fences at the very top of a text or Markdown file, and their language.
FRONT_MATTER_FENCES = {"---": "YAML", "+++": "TOML"}
# Why metadata nested deeper than the parser's recursion allows is refused.
NESTED_TOO_DEEPLY = "nested too deeply"


class MetadataLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases: metadata (and feeds.yaml) never needs them, and a
    few lines of nested aliases ("billion laughs") expand to more text than memory holds once
    printed."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases are not allowed: found *{event.anchor}", event.start_mark
            )
        return super().compose_node(parent, index)


# A timestamp stays the text it was written as: its date is checked (and a day that is not in
# the calendar named) with every other `published` value, rather than failing the parse.
def _timestamp_text(loader: MetadataLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


MetadataLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_text)


class _Unparsable(Exception):
    """Metadata that is not YAML or TOML; the message is the first line of why."""


def _load(text: str, language: str) -> Any:
    """The YAML or TOML `text` as data.

    Raises:
        _Unparsable: broken syntax, nesting deeper than the parser recurses, or a number
            too long to convert.
    """
    try:
        if language == "TOML":
            return tomllib.loads(text)
        return yaml.load(text, Loader=MetadataLoader)  # a SafeLoader: builds plain data only
    except RecursionError as exc:
        raise _Unparsable(NESTED_TOO_DEEPLY) from exc
    except (yaml.YAMLError, ValueError) as exc:  # TOMLDecodeError is a ValueError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, (yaml.YAMLError, tomllib.TOMLDecodeError)):
            reason = reason.split(":")[0]  # Python's too-long-integer message runs on
        raise _Unparsable(reason) from exc


def sidecar_path(path: Path) -> Path:
    """Where the article file `path` keeps its metadata: `story.md` → `story.meta.yaml`."""
    return path.with_name(path.name.rsplit(".", 1)[0] + SIDECAR_SUFFIX)


def read_sidecar(path: Path, rel: str, limits: FileLimits) -> dict[str, Any]:
    """The metadata in `path`'s `.meta.yaml` sidecar (`story.md` → `story.meta.yaml`); {} if none.

    Args:
        path: the article file.
        rel: the article file as problems name it.
        limits: the sidecar is held to the limit for one article.

    Returns:
        The sidecar's mapping, or {} when the article has no sidecar.

    Raises:
        ArticleError: the sidecar cannot be read, is broken YAML, or is not a mapping.
    """
    meta_path = sidecar_path(path)
    if not meta_path.exists():
        return {}
    try:
        data = read_bytes(meta_path, meta_path.name, limits.article_bytes, "a metadata file")
        meta = _load(decode_text(data, meta_path.name), "YAML")
    except ArticleError as exc:
        raise ArticleError(rel, f"unreadable metadata file {exc}") from exc
    except _Unparsable as exc:
        raise ArticleError(rel, f"unreadable metadata file {meta_path.name}: {exc}") from exc
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
        meta = _load(raw, language) or {}
    except _Unparsable as exc:
        raise ArticleError(where, f"broken {language} front matter ({exc})") from exc
    if not isinstance(meta, dict):
        raise ArticleError(where, f"front matter is not a {language} mapping")
    return meta, text[match.end() :]

"""newsbot's core: articles in, cited answers out. Never imports `bot` or discord.

The public surface, importable from here (each loaded when first named, so that `import
index.…` of one layer does not load the others):

    from index import Answer, Citation, Newsbot, NewsbotRetriever, Settings
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.answer.types import Answer, Citation
    from index.langchain_retriever import NewsbotRetriever
    from index.newsbot import Newsbot
    from index.settings import Settings

PUBLIC = {
    "Answer": "index.answer.types",
    "Citation": "index.answer.types",
    "Newsbot": "index.newsbot",
    "NewsbotRetriever": "index.langchain_retriever",
    "Settings": "index.settings",
}
__all__ = ["Answer", "Citation", "Newsbot", "NewsbotRetriever", "Settings"]


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)

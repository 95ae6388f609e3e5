"""`Tokenizer`: text as lower-cased, stemmed word terms without stop words.

BM25 and the extractive answer step each hold their own, so that changing one never
silently changes the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

LANGUAGE = "english"


class Tokenizer:
    """Lower-cased, stemmed word terms; English stop words (and `extra_stopwords`) dropped.

    Stop words are dropped before stemming, so they are written as plain words.
    """

    def __init__(self, extra_stopwords: Iterable[str] = ()) -> None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self._stemmer = Stemmer.Stemmer(LANGUAGE)
        extra = sorted(set(extra_stopwords))
        self._stopwords: str | list[str] = [*STOPWORDS_EN, *extra] if extra else "en"

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text's terms, in order."""
        import bm25s

        tokens = bm25s.tokenize(
            list(texts),
            stopwords=self._stopwords,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        return [list(t) for t in tokens]

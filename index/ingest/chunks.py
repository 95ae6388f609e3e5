"""Chunks: sentence-aware pieces of an article, sized to the embedding model's window."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from index.ingest.corpus.article import Article
from index.records import Chunk

# Paragraphs, then lines, then sentence ends, then clause marks, then words.
SEPARATORS = [
    r"\n\n",
    r"\n",
    r"(?<=[.!?])\s+",
    r"(?<=[.!?][\"'”’)])\s+",
    r"(?<=[;:])\s+",
    r"(?<=,)\s+",
    r"\s+",
    "",
]
TITLE_TOKENS = 32
# [CLS], [SEP] and the newline between title and body.
SPECIAL_TOKENS = 3


def chunk_id(article_id: str, ord: int) -> str:
    """Stable id of an article's `ord`-th chunk."""
    digest = hashlib.sha1(article_id.encode("utf-8")).hexdigest()[:16]
    return f"{digest}-{ord:04d}"


class Chunker:
    """Splits articles at the largest natural boundary that keeps chunks within a token budget."""

    def __init__(
        self, count_tokens: Callable[[str], int], chunk_tokens: int, chunk_overlap: int
    ) -> None:
        self.count_tokens = count_tokens
        self.chunk_tokens = chunk_tokens
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",
            chunk_size=chunk_tokens,
            chunk_overlap=chunk_overlap,
            length_function=count_tokens,
            strip_whitespace=True,
        )

    @staticmethod
    def window_needed(chunk_tokens: int) -> int:
        """Word pieces the model must accept for a chunk of `chunk_tokens` plus its title."""
        return chunk_tokens + TITLE_TOKENS + SPECIAL_TOKENS

    def split(self, article: Article) -> list[Chunk]:
        """The article's chunks, in order, with exact character offsets."""
        chunks: list[Chunk] = []
        cursor = 0
        for ord, piece in enumerate(self._splitter.split_text(article.text)):
            start = article.text.find(piece, cursor)
            if start < 0:  # the splitter only strips whitespace, so this cannot happen
                raise AssertionError(f"chunk {ord} of {article.id} is not in its article")
            chunks.append(
                Chunk(
                    id=chunk_id(article.id, ord),
                    article_id=article.id,
                    ord=ord,
                    start=start,
                    end=start + len(piece),
                    text=piece,
                )
            )
            cursor = start + 1
        return chunks

    def embed_text(self, title: str, chunk: Chunk) -> str:
        """What the model sees: the (shortened) title, then the passage."""
        return f"{self.short_title(title)}\n{chunk.text}"

    def short_title(self, title: str) -> str:
        """`title` cut at a word so that it fits `TITLE_TOKENS` word pieces."""
        if self.count_tokens(title) <= TITLE_TOKENS:
            return title
        words = title.split()
        while words and self.count_tokens(" ".join(words)) > TITLE_TOKENS:
            words.pop()
        return " ".join(words)


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[\"'“‘(]?[A-Z0-9$£€])|\n+")
# A period after these (or after an initial such as "F.") does not end a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr jr sr st gov sen rep gen lt col capt sgt prof rev hon pres vs inc co corp "
    "ltd dept univ mt ft ave jan feb mar apr aug sept sep oct nov dec u.s u.k u.n e.g i.e".split()
)
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences in `text` (whitespace between them excluded)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start()
        if "\n" not in match.group(0) and _is_abbreviation(text[max(0, end - 12) : end]):
            continue
        # Keep closing quotes with the sentence they end.
        end += len(match.group(0)) - len(match.group(0).lstrip("\"'”’)"))
        if text[start:end].strip():
            spans.append(_strip_span(text, start, end))
        start = match.end()
    if text[start:].strip():
        spans.append(_strip_span(text, start, len(text)))
    return spans


def _is_abbreviation(before: str) -> bool:
    """Whether the text before a period ends in an abbreviation or an initial ("F.")."""
    word = _WORD_BEFORE.search(before)
    if word is None:
        return False
    token = word.group(1).lower()
    return token in ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end

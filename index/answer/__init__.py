"""Answer: from retrieved passages to a cited answer. The public types (`Answer`,
`Citation`, `Answerer`), the default extractive answer, the optional language model's
answer with its citations checked, and follow-ups made to stand alone."""

from index.answer.types import Answer, Answerer, Citation, Copy

__all__ = ["Answer", "Answerer", "Citation", "Copy"]

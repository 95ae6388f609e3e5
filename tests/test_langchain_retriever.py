"""`NewsbotRetriever`: newsbot's index as a LangChain retriever, alone and in an LCEL chain."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from index.build.reindex import reindex
from index.errors import NewsbotError
from index.ingest.corpus.scan import scan_corpus
from index.langchain_retriever import NewsbotRetriever
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import write_article
from tests.fakes import FakeEmbedder

QUESTION = "How much aid has the US sent?"
# Paragraphs before the one that answers, so that its passage starts well inside the article.
PREAMBLE = [
    "The war in Ukraine began with a full-scale invasion in February 2022 and has not ended.",
    "Front lines in the east have moved little through two winters of heavy fighting.",
    "Allies meet every few months at the Ramstein air base to coordinate their support.",
]
ANSWERING = "Since 2022 the US has sent $61 billion in aid to Kyiv, the Pentagon says."


@pytest.fixture
def small_chunks(settings: Settings, corpus: Path) -> Settings:
    """The tiny corpus plus an article of several passages, in chunks of a paragraph."""
    write_article(
        corpus,
        "world/aid-timeline.md",
        "\n\n".join([*PREAMBLE, ANSWERING]),
        title="A timeline of Western support",
        source="World Desk",
        url="https://world.example.org/2024/06/01/timeline",
    )
    return settings.overridden(chunk_tokens=32, chunk_overlap=0)


@pytest.fixture
def newsbot(small_chunks: Settings, fake_embedder: FakeEmbedder) -> Iterator[Newsbot]:
    reindex(small_chunks, fake_embedder)
    bot = Newsbot(small_chunks, fake_embedder)
    yield bot
    bot.close()


def article_texts(corpus: Path) -> dict[str, str]:
    return {article.id: article.text for article in scan_corpus(corpus).articles}


def test_documents_are_passages_with_their_article_and_offsets(
    newsbot: Newsbot, corpus: Path
) -> None:
    docs = NewsbotRetriever(newsbot=newsbot, k=4).invoke(QUESTION)

    texts = article_texts(corpus)
    assert docs
    for doc in docs:
        meta = doc.metadata
        assert texts[meta["article_id"]][meta["start"] : meta["end"]] == doc.page_content
        assert doc.id == meta["chunk_id"]
    assert [doc.metadata["rank"] for doc in docs] == list(range(1, len(docs) + 1))
    scores = [doc.metadata["score"] for doc in docs]
    assert scores == sorted(scores, reverse=True)

    timeline = next(d for d in docs if d.metadata["article_id"] == "world/aid-timeline.md")
    assert timeline.page_content == ANSWERING
    assert timeline.metadata["start"] > 0  # the offsets are checked where they matter
    assert timeline.metadata["ord"] > 0
    assert {k: timeline.metadata[k] for k in ("title", "source", "published", "url")} == {
        "title": "A timeline of Western support",
        "source": "World Desk",
        "published": "2024-06-01",  # from the URL
        "url": "https://world.example.org/2024/06/01/timeline",
    }
    aid = next(d for d in docs if d.metadata["article_id"] == "aid.md")
    assert (aid.metadata["title"], aid.metadata["source"]) == ("US aid to Ukraine", "Example News")
    assert aid.metadata["published"] == "2024-11-17"


def test_k_caps_the_documents_and_defaults_to_top_k(
    newsbot: Newsbot, small_chunks: Settings, fake_embedder: FakeEmbedder
) -> None:
    assert len(NewsbotRetriever(newsbot=newsbot, k=1).invoke(QUESTION)) == 1
    assert len(NewsbotRetriever(newsbot=newsbot, k=3).invoke(QUESTION)) == 3

    two = Newsbot(small_chunks.overridden(top_k=2), fake_embedder)
    try:
        assert len(NewsbotRetriever(newsbot=two).invoke(QUESTION)) == 2
    finally:
        two.close()


def test_filters_are_honoured(newsbot: Newsbot) -> None:
    sport = NewsbotRetriever(newsbot=newsbot, source="sports daily").invoke(QUESTION)
    assert sport
    assert {d.metadata["article_id"] for d in sport} == {"sport/marathon.md"}

    recent = NewsbotRetriever(newsbot=newsbot, since="2024-11-01").invoke(QUESTION)
    assert {d.metadata["article_id"] for d in recent} == {"aid.md"}

    before = NewsbotRetriever(newsbot=newsbot, until="2024-10-31").invoke(QUESTION)
    assert "aid.md" not in {d.metadata["article_id"] for d in before}
    assert "world/aid-timeline.md" in {d.metadata["article_id"] for d in before}


def test_asked_on_leaves_out_later_articles(newsbot: Newsbot) -> None:
    docs = NewsbotRetriever(newsbot=newsbot, asked_on="2024-07-01").invoke(QUESTION)

    assert docs
    assert "aid.md" not in {d.metadata["article_id"] for d in docs}


def test_bad_dates_unknown_options_and_empty_questions_are_refused(newsbot: Newsbot) -> None:
    with pytest.raises(ValidationError, match="not a date"):
        NewsbotRetriever(newsbot=newsbot, since="2024-02-30")
    with pytest.raises(ValidationError, match="outlet"):
        NewsbotRetriever(newsbot=newsbot, outlet="World Desk")  # type: ignore[call-arg]
    with pytest.raises(NewsbotError, match="empty"):
        NewsbotRetriever(newsbot=newsbot).invoke("   ")


def test_ainvoke_gives_what_invoke_gives(newsbot: Newsbot) -> None:
    retriever = NewsbotRetriever(newsbot=newsbot, k=3)

    docs = asyncio.run(retriever.ainvoke(QUESTION))

    assert docs == retriever.invoke(QUESTION)
    assert len(docs) == 3


def test_from_settings_opens_the_index_with_its_query_model(
    small_chunks: Settings, fake_embedder: FakeEmbedder
) -> None:
    reindex(small_chunks, fake_embedder)
    queries = fake_embedder.query_calls

    retriever = NewsbotRetriever.from_settings(small_chunks, k=2)
    try:
        docs = retriever.invoke(QUESTION)
    finally:
        retriever.newsbot.close()

    assert len(docs) == 2
    assert fake_embedder.query_calls == queries + 1


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(
        f"[{d.metadata['rank']}] {d.metadata['title']} ({d.metadata['source']}): {d.page_content}"
        for d in docs
    )


def test_runs_in_an_lcel_chain_and_the_model_sees_the_passages(newsbot: Newsbot) -> None:
    prompts: list[str] = []

    def seen(prompt: PromptValue) -> PromptValue:
        prompts.append(prompt.to_string())
        return prompt

    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer from these news passages only, citing them:\n\n{context}"),
            ("human", "{question}"),
        ]
    )
    model = FakeListChatModel(responses=["$61 billion [1]"])
    chain = (
        {
            "context": NewsbotRetriever(newsbot=newsbot, k=2) | format_docs,
            "question": RunnablePassthrough(),
        }
        | prompt
        | RunnableLambda(seen)
        | model
        | StrOutputParser()
    )

    assert chain.invoke(QUESTION) == "$61 billion [1]"
    assert len(prompts) == 1
    assert ANSWERING in prompts[0]
    assert "A timeline of Western support (World Desk)" in prompts[0]
    assert prompts[0].rstrip().endswith(QUESTION)


def test_the_docs_example_runs(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reindex(settings, fake_embedder)
    monkeypatch.setenv("NEWSBOT_INDEX_DIR", str(settings.index_dir))
    doc = (Path(__file__).resolve().parent.parent / "docs" / "langchain.md").read_text()
    example = re.search(r"^```python\n(.*?)^```", doc, re.MULTILINE | re.DOTALL)
    assert example is not None

    exec(compile(example.group(1), "docs/langchain.md", "exec"), {"__name__": "example"})

    assert capsys.readouterr().out == "(the model's answer, citing [1])\n"

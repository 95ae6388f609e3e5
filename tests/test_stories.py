"""Syndicated copies: one wire story under several outlets' URLs is one source, "also
reported by" the others; different stories on one topic stay apart; the grouping follows
the corpus as articles come and go, and an index from before stories gets them with no
model call."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from index.answer.types import Answer, Citation, Copy
from index.build.reindex import reindex
from index.build.stories import Syndication
from index.cli.app import app
from index.langchain_retriever import NewsbotRetriever
from index.newsbot import Newsbot
from index.search.ranking import Ranking
from index.settings import Settings
from index.store.catalog import Catalog
from tests.conftest import as_before_segments, live, live_catalog, write_article
from tests.fakes import FakeEmbedder
from tests.passages import CITATION_KEYS

runner = CliRunner()

WIRE = (
    "Floodwater swept through the harbour town of Pellmouth on Tuesday night after the storm "
    "surge broke through the old sea wall, forcing about 2,300 residents from their homes.\n\n"
    "Emergency crews used boats to reach families stranded on the upper floors of houses along "
    "Quay Street, and the county opened three shelters in schools on higher ground. No deaths "
    "were reported, but two fishermen were treated in hospital for hypothermia.\n\n"
    "Mayor Ilse Brandt said the sea wall, built in 1911, had been due for repairs that were "
    "postponed twice for lack of money. Engineers will inspect the breach on Thursday, once the "
    "water has gone down, and the county estimates the damage at 14 million euros.\n\n"
    "The national weather service said the storm, named Wenna, was moving north and would "
    "weaken over the weekend."
)
BYLINE = "By Marta Kowal, Wire Service\n\n"
TRAILING = (
    "\n\nThe Ledger's reporters in Pellmouth will follow the clean-up, and readers who were "
    "affected can write to the newsroom with their stories and photographs."
)
# The same storm, another town: a different story on the same topic.
OSTBY = (
    "The storm named Wenna brought flooding to the river town of Ostby on Wednesday, a day "
    "after it hit the coast of Pellmouth. The river rose two metres in six hours and covered "
    "the market square, where traders had moved their stalls to the church hall.\n\n"
    "Ostby's council said 40 homes were flooded and the bridge to the station was closed. The "
    "national weather service said the storm was moving north and would weaken over the "
    "weekend, but warned of more rain in the hills.\n\n"
    "Farmers along the valley said the water had ruined the winter wheat in low fields, and "
    "the regional government promised to pay for part of the damage."
)
# The next day's story from Pellmouth: new facts, the background paragraphs of the first
# (about a third of its word 5-grams are the wire story's): a different story.
NEXT_DAY = (
    "Engineers found a second breach in the sea wall of Pellmouth on Thursday, and the "
    "county asked the army for sandbags before the high tides expected next week. Residents "
    "of Quay Street were told they could not return home before Monday.\n\n"
    "Two of the three shelters closed as families moved in with relatives; the school on "
    "Hill Road stays open for the 180 people still without a place to stay.\n\n"
    + WIRE.split("\n\n")[2]
    + "\n\n"
    + WIRE.split("\n\n")[3]
)
# (file, outlet, URL, date, headline, text): the wire story three times, small edits each.
COPIES = [
    (
        "times/pellmouth.md",
        "Harbour Times",
        "https://harbourtimes.example/pellmouth-flood",
        "2024-03-05",
        "Storm floods Pellmouth",
        WIRE,
    ),
    (
        "courier/flood.md",
        "Coastal Courier",
        "https://courier.example/news/flood",
        "2024-03-06",
        "Thousands leave their homes as sea wall breaks",
        BYLINE + WIRE.replace("about 2,300", "some 2,300"),
    ),
    (
        "ledger/storm.md",
        "Daily Ledger",
        "https://ledger.example/2024/storm",
        "2024-03-07",
        "Pellmouth counts the cost of storm Wenna",
        WIRE + TRAILING,
    ),
]
QUESTION = "How many residents had to leave their homes in Pellmouth?"


def write_copies(corpus: Path, copies: list[tuple[str, str, str, str, str, str]]) -> None:
    for path, outlet, url, published, title, text in copies:
        write_article(corpus, path, text, title=title, source=outlet, url=url, published=published)


def write_ostby(corpus: Path) -> None:
    write_article(
        corpus,
        "courier/ostby.md",
        OSTBY,
        title="Ostby under water",
        source="Coastal Courier",
        published="2024-03-07",
    )


def ask_json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["ask", "--json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def story_citations(data: dict[str, object]) -> list[dict[str, object]]:
    """The citations of `data` from the wire story's copies."""
    copies = {path for path, *_ in COPIES}
    citations = data["citations"]
    assert isinstance(citations, list)
    return [c for c in citations if c["article_id"] in copies]


def test_three_outlets_copies_are_one_source_also_reported_by_the_others(
    env: Path, corpus: Path
) -> None:
    write_copies(corpus, COPIES)
    write_ostby(corpus)
    indexed = runner.invoke(app, ["index"])
    assert indexed.exit_code == 0, indexed.output
    assert "syndicated copies (of 1 stories" in indexed.stdout

    data = ask_json(QUESTION)

    assert data["found"] is True and "2,300" in str(data["answer"])
    [cited] = story_citations(data)
    assert set(cited) == CITATION_KEYS
    others = [c for c in COPIES if c[0] != cited["article_id"]]
    assert cited["also_reported_by"] == [
        {"article_id": path, "title": title, "source": outlet, "url": url, "published": day}
        for path, outlet, url, day, title, _ in others  # earliest first
    ]
    assert Answer.from_dict(data).to_dict() == data
    text = runner.invoke(app, ["ask", QUESTION]).stdout
    also = " ".join(text.split()).split("also reported by ")[1]
    for _, outlet, url, day, *_ in others:
        assert f"{outlet} · {day} ({url})" in also


# The bundled corpus's wire story, carried by two outlets (wire 4 March, Courier 4 March,
# Gazette 5 March).
KESTREL_WIRE = "coastline-wire/2025-03-04-kestrel-ferries"
KESTREL_COURIER = "demo/courier/2025-03-04-kestrel-ferries-northsound.md"
KESTREL_GAZETTE = "demo/lenholm-gazette/kestrel-ferries-sale.txt"
KESTREL_QUESTION = "Who bought Kestrel Ferries?"


def kestrel_cited(data: dict[str, object]) -> tuple[str, list[str]]:
    """The Kestrel Ferries copy `data` cites (one, maybe in several passages) and the copies
    its citations list as also reporting it."""
    citations = data["citations"]
    assert isinstance(citations, list)
    copies = {KESTREL_WIRE, KESTREL_COURIER, KESTREL_GAZETTE}
    cited = [c for c in citations if c["article_id"] in copies]
    [article_id] = {c["article_id"] for c in cited}
    [also] = {tuple(copy["article_id"] for copy in c["also_reported_by"]) for c in cited}
    return article_id, list(also)


def test_a_copy_published_after_the_question_is_not_listed(bundled_env: Path) -> None:
    indexed = runner.invoke(app, ["index"])
    assert indexed.exit_code == 0, indexed.output
    assert "syndicated copies (of 1 stories" in indexed.stdout

    data = ask_json(KESTREL_QUESTION, "--asked-on", "2025-03-04")

    cited, also = kestrel_cited(data)
    assert {cited, *also} == {KESTREL_WIRE, KESTREL_COURIER}


def test_copies_the_filters_leave_out_are_not_listed(bundled_env: Path) -> None:
    assert runner.invoke(app, ["index"]).exit_code == 0

    data = ask_json(KESTREL_QUESTION, "--source", "Lenholm Gazette")

    assert kestrel_cited(data) == (KESTREL_GAZETTE, [])


def test_the_langchain_documents_carry_the_copies(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    write_copies(corpus, COPIES)
    reindex(settings, fake_embedder)
    retriever = NewsbotRetriever(newsbot=Newsbot(settings, fake_embedder))

    [doc] = [d for d in retriever.invoke(QUESTION) if d.metadata["also_reported_by"]]

    listed = [
        doc.metadata["article_id"],
        *(c["article_id"] for c in doc.metadata["also_reported_by"]),
    ]
    assert sorted(listed) == sorted(path for path, *_ in COPIES)
    assert set(doc.metadata["also_reported_by"][0]) == {
        "article_id",
        "title",
        "source",
        "url",
        "published",
    }


def test_a_different_story_on_the_same_topic_is_not_merged(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    write_copies(corpus, COPIES)
    write_ostby(corpus)
    write_article(corpus, "times/breach.md", NEXT_DAY, title="Second breach", source="Times")
    reindex(settings, fake_embedder)

    stories = {a.id: a.story for a in live_catalog(settings).articles()}

    assert len({stories[path] for path, *_ in COPIES}) == 1
    assert stories["times/breach.md"] == "times/breach.md"  # shares a third of its text
    assert stories["courier/ostby.md"] == "courier/ostby.md"
    assert stories["aid.md"] == "aid.md"
    bot = Newsbot(settings, fake_embedder)
    hits = bot.search("storm Wenna flooding Pellmouth Ostby", k=5)
    assert "courier/ostby.md" in {hit.passage.article.id for hit in hits}
    ostby = next(hit for hit in hits if hit.passage.article.id == "courier/ostby.md")
    assert ostby.copies == ()


def five_copies(corpus: Path) -> None:
    outlets = ["Harbour Times", "Coastal Courier", "Daily Ledger", "North Post", "Bay Herald"]
    for i, outlet in enumerate(outlets):
        text = (BYLINE if i % 2 else "") + WIRE + (TRAILING if i % 3 == 2 else "")
        write_article(
            corpus, f"wire/{i}.md", text, title=f"Pellmouth flood, {outlet}", source=outlet
        )
    for i, what in enumerate(["football club", "library", "bakery", "school choir"]):
        write_article(
            corpus,
            f"other/{i}.md",
            f"Pellmouth's {what} celebrated its anniversary this week, and residents of the "
            f"town came to the party on Quay Street, {i + 10} years after it opened.",
            title=f"Pellmouth {what}",
        )


def test_five_copies_cannot_fill_five_slots(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    five_copies(corpus)
    # Short chunks: each copy has several passages, as a long article does.
    settings = settings.overridden(chunk_tokens=64, chunk_overlap=8)
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)
    question = "Pellmouth sea wall flood: shelters, hospital, repairs, the storm's path?"

    hits = bot.search(question, k=5)

    articles = [hit.passage.article for hit in hits]
    wire = [a.id for a in articles if a.id.startswith("wire/")]
    assert len(set(wire)) == 1 and len(wire) <= settings.max_per_article
    assert sum(a.id.startswith("other/") for a in articles) >= 5 - settings.max_per_article
    cited = next(hit for hit in hits if hit.passage.article.id.startswith("wire/"))
    assert len(cited.copies) == 4
    # The ablation: with any number of copies, they fill the slots.
    every = Newsbot(settings, fake_embedder, ranking=Ranking(story_copies=0))
    spread = every.search(question, k=5)
    assert (
        len({h.passage.article.id for h in spread if h.passage.article.id.startswith("wire/")}) > 1
    )


def test_a_copy_added_later_joins_the_story_and_a_removed_one_leaves_it(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    write_copies(corpus, COPIES)
    reindex(settings, fake_embedder)
    embedded = fake_embedder.texts_embedded
    write_article(
        corpus,
        "post/pellmouth.md",
        WIRE.replace("Tuesday night", "Tuesday evening") + TRAILING,
        title="Pellmouth evacuated",
        source="North Post",
        published="2024-03-08",
    )

    report = reindex(settings, fake_embedder)

    assert report.added == ["post/pellmouth.md"] and (report.copies, report.stories) == (3, 1)
    assert fake_embedder.texts_embedded - embedded == report.chunks_embedded  # only the new one
    bot = Newsbot(settings, fake_embedder)
    [hit] = [h for h in bot.search(QUESTION, k=5) if h.copies]
    assert len(hit.copies) == 3

    (corpus / "courier/flood.md").unlink()
    (corpus / "times/pellmouth.md").unlink()
    report = reindex(settings, fake_embedder)

    assert (report.copies, report.stories) == (1, 1)
    [hit] = [h for h in bot.search(QUESTION, k=5) if h.copies]
    assert {hit.passage.article.id, *(a.id for a in hit.copies)} == {
        "ledger/storm.md",
        "post/pellmouth.md",
    }
    (corpus / "post/pellmouth.md").unlink()
    reindex(settings, fake_embedder)
    assert all(not h.copies for h in bot.search(QUESTION, k=5))
    stories = {a.id: a.story for a in live_catalog(settings).articles()}
    assert stories["ledger/storm.md"] == "ledger/storm.md"


def test_a_copy_edited_into_another_story_leaves_it(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    write_copies(corpus, COPIES)
    reindex(settings, fake_embedder)
    path, outlet, url, published, _, _ = COPIES[2]
    write_article(corpus, path, OSTBY, title="Ostby", source=outlet, url=url, published=published)

    report = reindex(settings, fake_embedder)

    assert report.updated == [path] and (report.copies, report.stories) == (1, 1)
    stories = {a.id: a.story for a in live_catalog(settings).articles()}
    assert stories[path] == path


def forget_stories(catalog_path: Path) -> None:
    """Make the catalog at `catalog_path` one from before stories."""
    db = sqlite3.connect(catalog_path)
    db.execute("DROP TABLE stories")
    db.execute("DELETE FROM meta WHERE key = 'stories'")
    db.commit()
    db.close()


def test_an_index_from_before_stories_answers_then_gets_them_with_no_model_call(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    write_copies(corpus, COPIES)
    reindex(settings, fake_embedder)
    forget_stories(as_before_segments(settings.index_dir).catalog)
    old = Newsbot(settings, fake_embedder)
    before = old.ask(QUESTION)
    assert before.found and all(not c.also_reported_by for c in before.ranked)
    embedded = fake_embedder.texts_embedded
    number = live(settings).number

    report = reindex(settings, fake_embedder)

    assert report.stories_grouped and not report.changed
    assert fake_embedder.texts_embedded == embedded
    assert live(settings).number == number + 1
    [cited] = [c for c in old.ask(QUESTION).citations if c.article_id.startswith(("t", "c", "l"))]
    assert len(cited.also_reported_by) == 2
    again = reindex(settings, fake_embedder)
    assert not again.stories_grouped and live(settings).number == number + 1


def test_the_answers_are_the_same_without_duplicates_in_the_corpus(
    env: Path, corpus: Path, tmp_path: Path
) -> None:
    write_ostby(corpus)
    write_article(corpus, "times/pellmouth.md", WIRE, title="Storm floods Pellmouth")
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"question": q, "answers": [a], "gold_article_ids": [g]}) + "\n"
            for q, a, g in [
                (QUESTION, "2,300", "times/pellmouth.md"),
                ("How many homes were flooded in Ostby?", "40", "courier/ostby.md"),
                ("Who won the Chicago Marathon?", "Ruth Chepngetich", "sport/marathon.md"),
                ("How much aid has the US sent to Ukraine?", "$56.2 billion", "aid.md"),
            ]
        )
    )
    assert runner.invoke(app, ["index"]).exit_code == 0
    runs: list[dict[str, Any]] = []
    for ablation in ([], ["--set", "story_copies=0"]):
        out = tmp_path / f"eval{len(runs)}.json"
        result = runner.invoke(
            app, ["eval", "--questions", str(questions), "--json", str(out), *ablation]
        )
        assert result.exit_code == 0, result.output
        runs.append(json.loads(out.read_text()))

    def answers(run: dict[str, list[dict[str, object]]]) -> list[object]:
        return [(a["answer"], a["cited"], a["strict_rank"]) for a in run["results"]]

    assert answers(runs[0]) == answers(runs[1])
    figures = [
        {k: v for k, v in run["figures"].items() if not k.startswith("latency")} for run in runs
    ]
    assert figures[0] == figures[1]
    assert runs[0]["results"][0]["strict_rank"] == 1


def test_short_briefs_sharing_a_standing_line_are_not_copies() -> None:
    standing = (
        "Reporting by the wire desk in the capital; editing by the night editor on duty "
        "today, for the regional news service."
    )
    briefs = {
        f"b{i}": f"The council of town {i} approved {i} new buses. {standing}" for i in range(3)
    }
    syndication = Syndication()
    signatures = dict(zip(briefs, syndication.signatures(briefs.values()), strict=True))

    assert syndication.stories(signatures) == {b: b for b in briefs}
    # The same briefs, were they long enough to judge, would be one story: the rule is length.
    assert (
        len(
            set(
                Syndication(min_words=5)
                .stories(
                    dict(
                        zip(
                            briefs,
                            Syndication(min_words=5).signatures(briefs.values()),
                            strict=True,
                        )
                    )
                )
                .values()
            )
        )
        == 1
    )


def test_stories_are_chained_and_named_by_their_smallest_id() -> None:
    syndication = Syndication()
    # Each text shares 0.6 of its shingles with the next (an update of it), 0.33 with the
    # one after: a chain of updates is one story.
    words = [f"w{i}" for i in range(500)]
    texts = {name: " ".join(words[50 * i : 50 * i + 200]) for i, name in enumerate("edcbafg")}
    texts["z"] = " ".join(f"x{i}" for i in range(200))
    signatures = dict(zip(texts, syndication.signatures(texts.values()), strict=True))

    assert syndication.stories(signatures) == {**{name: "a" for name in "abcdefg"}, "z": "z"}


def test_a_citation_carries_its_copies_through_json() -> None:
    copy = Copy("b.md", "Other headline", "Paper B", "https://b.example/x", "2024-03-06")
    citation = Citation(1, "a.md", "Title", "Paper A", None, "2024-03-05", "Text.")
    answer = Answer("Q?", True, "Text. [1]", [replace(citation, also_reported_by=(copy,))])

    data = json.loads(json.dumps(answer.to_dict()))

    assert data["citations"][0]["also_reported_by"] == [
        {
            "article_id": "b.md",
            "title": "Other headline",
            "source": "Paper B",
            "url": "https://b.example/x",
            "published": "2024-03-06",
        }
    ]
    assert Answer.from_dict(data) == answer
    assert Answer.from_dict({**data, "citations": [{**data["citations"][0]}]}) == answer
    old = {k: v for k, v in data["citations"][0].items() if k != "also_reported_by"}
    assert Answer.from_dict({**data, "citations": [old]}).citations[0].also_reported_by == ()


@pytest.mark.parametrize("dropped", [True, False])
def test_a_reader_opens_a_catalog_with_or_without_stories(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, dropped: bool
) -> None:
    write_copies(corpus, COPIES)
    reindex(settings, fake_embedder)
    if dropped:
        forget_stories(as_before_segments(settings.index_dir).catalog)
    catalog = Catalog(live(settings).catalog, writable=False)
    try:
        records = catalog.articles()
        copies = catalog.copies(a.story_id for a in records)
    finally:
        catalog.close()

    assert len(records) == 6
    assert len(copies) == (0 if dropped else 1)


def test_regrouping_what_a_change_touched_agrees_with_grouping_everything() -> None:
    syndication = Syndication()
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(3000)]
    texts: dict[str, str] = {}
    for story in range(25):
        words = rng.sample(vocabulary, 300)
        for copy in range(rng.randint(1, 4)):
            edited = list(words)
            for _ in range(8):  # a copy's own edits: a headline, a byline
                edited[rng.randrange(len(edited))] = rng.choice(vocabulary)
            texts[f"s{story:02d}-{copy}"] = " ".join(edited)
    names = sorted(texts)
    signatures = dict(zip(names, syndication.signatures(texts[n] for n in names), strict=True))
    for _ in range(20):
        present = set(rng.sample(names, 30))
        before = syndication.stories({a: signatures[a] for a in present})
        mapped = {a: s for a, s in before.items() if s != a}
        # A change: some articles added, some removed, one edited into another's story.
        added = set(rng.sample(sorted(set(names) - present), 5))
        removed = set(rng.sample(sorted(present), 4))
        moved = rng.choice(sorted(present - removed))
        after = {a: signatures[a] for a in (present | added) - removed}
        after[moved] = signatures[rng.choice(sorted(set(after) - {moved}))]

        regrouped = syndication.regroup(after, mapped, added | {moved})

        assert regrouped == syndication.stories(after)


def test_an_article_added_to_one_end_of_a_chain_renames_the_whole_story() -> None:
    syndication = Syndication()
    words = [f"w{i}" for i in range(500)]
    # Each text shares 0.6 of its shingles with the next, 0.33 with the one after.
    texts = {name: " ".join(words[50 * i : 50 * i + 200]) for i, name in enumerate("abcde")}
    signatures = dict(zip(texts, syndication.signatures(texts.values()), strict=True))
    before = syndication.stories({a: s for a, s in signatures.items() if a != "a"})
    assert set(before.values()) == {"b"}

    regrouped = syndication.regroup(signatures, {a: s for a, s in before.items() if s != a}, {"a"})

    assert regrouped == syndication.stories(signatures) == dict.fromkeys("abcde", "a")

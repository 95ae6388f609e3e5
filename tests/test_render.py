"""Answer embeds: Discord's limits, escaping, links never cut, cuts at sentence ends."""

from __future__ import annotations

import re
from dataclasses import replace

import discord
import pytest

from bot.render import (
    ANSWER_COLOUR,
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    MODEL_FOUND_NONE,
    NOT_COVERED_COLOUR,
    answer_embed,
    clean,
    fit,
    model_note,
    more_sources_embed,
    shorten,
    shorten_left,
    with_model_note,
)
from index.answer.types import (
    HEDGE,
    MODE_EXTRACTIVE,
    MODE_LLM,
    MODEL_FAILED,
    MODEL_NOT_COVERED,
    NO_CLAIMS,
    NO_PASSAGES,
    NOT_COVERED,
    NOTHING_VERIFIED,
    Answer,
    Citation,
    Copy,
)

SENTENCE = (
    "Officials in Kyiv said on Tuesday that another shipment of air-defence missiles arrived."
)
LONG_URL = "https://example.com/" + "section/" * 30 + "story.html"


def citation(n: int, passage: str, *, url: str | None = LONG_URL, title: str = "Title") -> Citation:
    middle = passage.find(SENTENCE)
    highlight = (middle, middle + len(SENTENCE)) if middle >= 0 else None
    return Citation(n, f"a{n}", title, "Outlet " * 60, url, "2024-11-17", passage, highlight)


def huge_answer(n_citations: int = 30) -> Answer:
    passage = ("Background sentence that goes on. " * 60) + SENTENCE + (" More detail here." * 200)
    citations = [
        citation(i + 1, passage, title="Headline " * 80 + f"#{i + 1}") for i in range(n_citations)
    ]
    return Answer("why " * 500 + "?", True, f"{SENTENCE} " * 80 + "[1]", citations, 12.0)


def assert_within_limits(embed: discord.Embed) -> None:
    assert len(embed) <= EMBED_TOTAL_LIMIT
    assert len(embed.title or "") <= EMBED_TITLE_LIMIT
    assert len(embed.description or "") <= EMBED_DESCRIPTION_LIMIT
    assert len(embed.fields) <= EMBED_FIELD_LIMIT
    for f in embed.fields:
        assert len(f.name or "") <= FIELD_NAME_LIMIT
        assert len(f.value or "") <= FIELD_VALUE_LIMIT


def test_a_huge_answer_fits_every_limit_and_keeps_links_whole() -> None:
    answer = huge_answer()
    embed = answer_embed(answer, shown=30)

    assert_within_limits(embed)
    # Fewer sources rather than unreadable ones: consecutive numbers, within the 25 allowed.
    assert 10 <= len(embed.fields) <= EMBED_FIELD_LIMIT
    for i, f in enumerate(embed.fields, start=1):
        assert f.name is not None and f.name.startswith(f"[{i}] ")
        head = (f.value or "").split("\n", 1)[0]
        links = re.findall(r"\]\((\S*?)\)$", head)
        assert links in ([], [LONG_URL])  # a link is whole, or the title stands alone
    # With room to spare (5 sources) every source keeps its link.
    roomy = answer_embed(answer, shown=5)
    assert_within_limits(roomy)
    assert len(roomy.fields) == 5
    assert all(f"]({LONG_URL})" in (f.value or "") for f in roomy.fields)


def test_more_sources_embed_fits_too() -> None:
    assert_within_limits(more_sources_embed(huge_answer().citations))


def copies(count: int, url: str = LONG_URL, outlet: str = "Outlet " * 20) -> tuple[Copy, ...]:
    """`count` other outlets' copies of a story."""
    return tuple(Copy(f"c{i}", "Headline", f"{outlet}{i}", url, "2024-11-18") for i in range(count))


def test_a_source_says_which_outlets_also_reported_it_as_links() -> None:
    passage = "First, context. " + SENTENCE + " Then, more."
    cited = replace(
        citation(1, passage, url="https://e.com/x"),
        source="Paper A",
        also_reported_by=(
            Copy("b", "Other", "Paper B", "https://b.example/x", "2024-11-18"),
            Copy("c", "Third", "Paper [C]", "javascript:alert(1)", None),
        ),
    )

    embed = answer_embed(Answer("q?", True, "a [1]", [cited]), shown=1)

    assert embed.fields[0].name == "[1] Paper A · 2024-11-17"
    assert embed.fields[0].value == (
        "[Title](https://e.com/x)\n"
        "*Also reported by* [Paper B · 2024-11-18](https://b.example/x), Paper (C)\n"
        f"> “First, context. **{SENTENCE}** Then, more.”"
    )


def test_many_copies_fit_every_limit_counted_never_cut() -> None:
    answer = huge_answer()
    answer = replace(
        answer, citations=[replace(c, also_reported_by=copies(40)) for c in answer.citations]
    )

    for embed in (answer_embed(answer, shown=30), answer_embed(answer, shown=3)):
        assert_within_limits(embed)
        for f in embed.fields:
            lines = (f.value or "").split("\n")
            also = [line for line in lines if line.startswith("*Also reported by*")]
            # In a crowded embed it may give way to the quote; where shown, it is counted.
            for line in also:
                assert re.search(r"(and \d+ more|\d+ outlets)$", line), line
                links = re.findall(r"\]\((\S*?)\)", line)
                assert links == [LONG_URL] * line.count("](")
    short = [
        replace(c, also_reported_by=copies(40, "https://e.example/c", "Paper "))
        for c in answer.citations
    ]
    roomy = answer_embed(replace(answer, citations=short), shown=3)
    assert_within_limits(roomy)
    line = (roomy.fields[0].value or "").split("\n")[1]
    assert line.startswith("*Also reported by* [Paper 0 · 2024-11-18](https://e.example/c), [")
    assert re.search(r"\) and \d+ more$", line)
    assert_within_limits(more_sources_embed(answer.citations))


def test_the_answer_is_cut_at_a_sentence_end() -> None:
    embed = answer_embed(huge_answer(), shown=5)

    assert embed.description is not None
    assert embed.description.endswith(SENTENCE[-20:])


def test_the_supporting_sentence_is_quoted_in_bold_with_context() -> None:
    passage = "First, context. " + SENTENCE + " Then, more."
    embed = answer_embed(
        Answer("q?", True, "a [1]", [citation(1, passage, url="https://e.com/x")]), shown=1
    )

    assert embed.fields[0].value == (
        f"[Title](https://e.com/x)\n> “First, context. **{SENTENCE}** Then, more.”"
    )


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "https://e.com/a)b", "https://e.com/a b", "ftp://e.com/x", None],
)
def test_unsafe_or_missing_urls_are_never_linked(url: str | None) -> None:
    embed = answer_embed(Answer("q?", True, "a [1]", [citation(1, SENTENCE, url=url)]), shown=1)

    assert embed.fields[0].value is not None
    assert embed.fields[0].value.startswith("**Title**\n")


def test_article_and_question_text_cannot_format_link_or_mention() -> None:
    nasty = (
        "@everyone @here <@123456789012345678> <@&123456789012345678> **bold** "
        "[x](https://evil.example) `code` > quote"
    )
    out = clean(nasty + "\n# heading")

    assert "@everyone" not in out and "@here" not in out
    assert "<@1" not in out and "<@&" not in out
    assert "\\*\\*bold\\*\\*" in out and "\\`code\\`" in out
    assert "\\[x](https://evil.example)" in out
    assert "\n" not in out
    assert clean("bell\x07 null\x00 del\x7f") == "bell null del"


def test_not_covered_is_short_grey_and_has_no_fields() -> None:
    embed = answer_embed(
        Answer("Who won?", False, "The indexed articles don't cover this."), shown=5
    )

    assert embed.colour == discord.Colour.light_grey()
    assert not embed.fields
    assert len(embed) < 200


@pytest.mark.parametrize("limit", [1, 2, 10, 40, 85, 200])
def test_shorten_and_fit_never_exceed_the_limit(limit: int) -> None:
    text = "One two three. Four *five* six @everyone seven. " * 10
    assert len(shorten(text, limit)) <= limit
    assert len(shorten_left(text, limit)) <= limit
    assert len(fit(text, limit)) <= limit
    assert not fit(text, limit).endswith("\\")


def test_shorten_prefers_a_sentence_end_then_a_word() -> None:
    assert shorten("One two three. Four five six.", 20) == "One two three."
    assert shorten("Onetwothree fourfivesix seveneight", 20) == "Onetwothree…"
    assert shorten_left("One two. Three four five six.", 24) == "Three four five six."


def test_the_answer_itself_is_bold_and_its_neighbours_escaped() -> None:
    text = "The *union* has 160,000 members. [1]"
    answer = Answer("How many?", True, text, [citation(1, SENTENCE)], answer_span=(16, 23))

    description = answer_embed(answer, shown=5).description or ""

    assert description == r"The \*union\* has **160,000** members. [1]"


def test_a_hedged_answer_is_grey_and_names_its_source_as_the_closest() -> None:
    closest = replace(citation(1, SENTENCE, url=None), role="closest")
    further = replace(citation(2, SENTENCE, url=None), role="further reading")
    hedged = Answer("Who?", False, f"{HEDGE}“{SENTENCE}” [1]", [closest])
    found = Answer("Who?", True, f"{SENTENCE} [1]", [replace(closest, role="support"), further])

    grey = answer_embed(hedged, shown=5)
    blue = answer_embed(found, shown=5)

    assert grey.colour == NOT_COVERED_COLOUR
    assert [(f.name or "").endswith("… · closest") for f in grey.fields] == [True]  # not cut
    assert all(len(f.name or "") <= FIELD_NAME_LIMIT for f in grey.fields)
    assert blue.colour == ANSWER_COLOUR
    assert [(f.name or "").endswith("… · further reading") for f in blue.fields] == [False, True]


# -- how the answer was made -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "dropped", "fallback", "note"),
    [
        (MODE_LLM, 0, None, "Written by a language model; every quote checked"),
        (
            MODE_LLM,
            1,
            None,
            "Written by a language model; every quote checked · 1 unsupported sentence left out",
        ),
        (
            MODE_LLM,
            3,
            None,
            "Written by a language model; every quote checked · 3 unsupported sentences left out",
        ),
        (
            MODE_EXTRACTIVE,
            2,
            NOTHING_VERIFIED,
            "Quoted from the articles: the language model's answer could not be checked "
            "(2 unsupported sentences)",
        ),
        (
            MODE_EXTRACTIVE,
            0,
            MODEL_FAILED,
            "Quoted from the articles: the language model gave no usable answer",
        ),
        (
            MODE_EXTRACTIVE,
            0,
            MODEL_NOT_COVERED,
            "Quoted from the articles: the language model's reply was not used (it found no "
            "answer in the articles)",
        ),
        (
            MODE_EXTRACTIVE,
            0,
            NO_CLAIMS,
            "Quoted from the articles: the language model's reply was not used (it gave no answer)",
        ),
        (MODE_EXTRACTIVE, 0, NO_PASSAGES, None),
        (MODE_EXTRACTIVE, 0, None, None),  # no model: today's footer
    ],
)
def test_the_footer_note_says_how_the_answer_was_made(
    mode: str, dropped: int, fallback: str | None, note: str | None
) -> None:
    answer = Answer(
        "Who?", True, f"{SENTENCE} [1]", mode=mode, dropped_claims=dropped, fallback=fallback
    )

    assert model_note(answer) == note
    footer = with_model_note(answer, "Answered in 1.2 s")
    assert footer == (f"{note}\nAnswered in 1.2 s" if note else "Answered in 1.2 s")
    assert answer_embed(answer, shown=5, footer=footer).footer.text == footer


def test_a_not_covered_answer_says_when_the_models_answer_was_left_out() -> None:
    text = "The indexed articles don't cover this."
    offline = Answer("Who won?", False, text)
    fell_back = Answer("Who won?", False, text, dropped_claims=2)

    assert answer_embed(offline, shown=5).footer.text is None
    assert answer_embed(fell_back, shown=5).footer.text == model_note(fell_back)


def test_the_note_keeps_the_footer_within_its_limit() -> None:
    answer = Answer("Who?", True, f"{SENTENCE} [1]", mode=MODE_LLM, dropped_claims=1)

    footer = answer_embed(answer, shown=5, footer=with_model_note(answer, "x " * 3000)).footer

    assert footer.text is not None and len(footer.text) <= FOOTER_LIMIT
    assert footer.text.startswith(f"{model_note(answer)}\n")


def test_a_language_models_not_covered_says_a_model_read_the_passages() -> None:
    answer = Answer("Who won the cup?", False, NOT_COVERED, mode=MODE_LLM)

    embed = answer_embed(answer, shown=5, footer="Answered in 0.4 s")

    assert embed.footer.text == MODEL_FOUND_NONE
    assert embed.description and embed.description.startswith(NOT_COVERED)
    offline = answer_embed(Answer("Who won the cup?", False, NOT_COVERED), shown=5)
    assert offline.footer.text is None  # no model: no note, as before

"""Every citation checked: a model's claims are shown only with the passages that hold their
quotes, renumbered in order of first citation; with none left, the offline answer."""

from __future__ import annotations

from dataclasses import replace

from langchain_core.utils.function_calling import convert_to_openai_tool

from index.answer.citations import (
    MAX_CLAIM_CHARS,
    MAX_CLAIMS,
    MAX_QUOTE_CHARS,
    NO_QUOTE,
    NO_SOURCE,
    NO_TEXT,
    TOO_LONG,
    TOO_MANY,
    Claim,
    LlmAnswer,
    answer_or_fallback,
    check,
    find_quote,
    normalise,
)
from index.answer.types import (
    CLOSEST,
    HEDGE,
    MODE_EXTRACTIVE,
    MODE_LLM,
    MODEL_NOT_COVERED,
    NO_CLAIMS,
    NOT_COVERED,
    NOTHING_VERIFIED,
    SUPPORT,
    Answer,
    Citation,
)
from index.search.retrieval import Hit
from tests.passages import make_hit

QUESTION = "Who won the darts world championship final?"
PASSAGES = (
    "Luke Humphries won the darts world championship final against Luke Littler.",
    "Fans queued for hours at Alexandra Palace before the final.",
    "The final drew a record television audience of 3.7 million.",
    "Littler, 16, was the youngest player ever to reach the final.",
)
OFFLINE = Answer(QUESTION, True, f"{PASSAGES[0]} [1]")  # an outright answer
OFFLINE_HEDGE = [Citation(1, "a2.md", "A2", None, None, None, PASSAGES[1], role=CLOSEST)]


def four_hits(*texts: str) -> list[Hit]:
    """Passages 1 to 4 as shown to the model (articles a1.md to a4.md)."""
    return [make_hit(n, text, 1.0 / n) for n, text in enumerate(texts or PASSAGES, start=1)]


def claim(text: str, sources: list[int], quote: str) -> Claim:
    return Claim(text=text, sources=sources, quote=quote)


def answer(*claims: Claim) -> LlmAnswer:
    return LlmAnswer(not_covered=False, claims=list(claims))


def llm_answer(model: LlmAnswer, hits: list[Hit] | None = None) -> Answer:
    """The answer shown; the test fails if the offline answer was given instead."""
    shown = answer_or_fallback(QUESTION, model, hits or four_hits(), OFFLINE)
    assert shown.mode == MODE_LLM, shown
    return shown


def highlighted(shown: Answer, n: int) -> str:
    citation = shown.citations[n - 1]
    assert citation.highlight is not None
    start, end = citation.highlight
    return citation.passage[start:end]


def test_a_good_answer_numbers_its_sources_in_order_of_first_citation() -> None:
    shown = llm_answer(
        answer(
            claim("A record 3.7 million watched the final.", [3], "audience of 3.7 million"),
            claim("Luke Humphries won it.", [1], "Luke Humphries won the darts"),
        )
    )

    assert shown.found
    assert shown.answer == "A record 3.7 million watched the final. [1] Luke Humphries won it. [2]"
    assert [(c.n, c.article_id, c.role) for c in shown.citations] == [
        (1, "a3.md", SUPPORT),
        (2, "a1.md", SUPPORT),
    ]
    assert highlighted(shown, 1) == "audience of 3.7 million"
    assert highlighted(shown, 2) == "Luke Humphries won the darts"
    assert shown.dropped_claims == 0
    assert [c.article_id for c in shown.ranked] == ["a3.md", "a1.md", "a2.md", "a4.md"]
    assert [c.n for c in shown.ranked] == [1, 2, 3, 4]


def test_a_claim_citing_two_passages_lists_both_markers_in_order() -> None:
    shown = llm_answer(
        answer(
            claim("Humphries won.", [1], "Humphries won the darts"),
            claim("The final was at Alexandra Palace.", [4, 2, 1, 4], "before the final"),
        ),
        four_hits(*PASSAGES[:3], "Crowds gathered before the final."),
    )

    assert shown.answer == "Humphries won. [1] The final was at Alexandra Palace. [2][3]"
    assert [c.article_id for c in shown.citations] == ["a1.md", "a4.md", "a2.md"]


def test_a_passage_that_does_not_exist_is_never_cited() -> None:
    checked = check(
        answer(
            claim("Humphries beat Littler.", [5], "won the darts world championship"),
            claim("Humphries won.", [0, -1, 5, 1], "won the darts world championship"),
        ),
        four_hits(),
    )

    assert [c.reason for c in checked.dropped] == [NO_SOURCE]
    assert [[s.hit_index for s in c.support] for c in checked.claims] == [[0]]


def test_a_quote_counts_only_for_the_cited_passage_that_holds_it() -> None:
    shown = llm_answer(
        answer(claim("The final drew 3.7 million.", [1, 2, 3], "audience of 3.7 million"))
    )

    assert shown.answer == "The final drew 3.7 million. [1]"
    assert [c.article_id for c in shown.citations] == ["a3.md"]


def test_a_quote_in_no_cited_passage_drops_the_claim_even_if_another_passage_holds_it() -> None:
    checked = check(
        answer(claim("Humphries won.", [2, 3], "Luke Humphries won the darts")), four_hits()
    )

    assert checked.claims == ()
    assert [c.reason for c in checked.dropped] == [NO_SOURCE]


def test_quotes_dashes_case_accents_and_line_breaks_do_not_stop_a_quote_verifying() -> None:
    passage = (
        "The result \u2013 a 7\u20134 win \u2013 was called \u201cthe greatest \ufb01nal\u201d\n"
        "by  Littler\u2019s\tcoach, Jos\u00e9 Ruiz."
    )
    quote = 'A 7-4 win - was called "the greatest final" by Littler\'s coach, Jose\u0301 Ruiz'
    shown = llm_answer(
        answer(claim("Ruiz called the 7-4 win the greatest final.", [1], quote)),
        four_hits(passage, *PASSAGES[1:]),
    )

    assert shown.citations[0].article_id == "a1.md"
    start, end = shown.citations[0].highlight or (0, 0)
    assert passage[start:end].startswith("a 7\u20134") and passage[start:end].endswith("Ruiz")
    assert normalise(passage[start:end])[0] == normalise(quote)[0]


def test_the_highlight_indexes_the_original_passage_text() -> None:
    passage = "Intro.\n\n  Fans   queued \u201cfor hours\u201d at\nAlexandra Palace."
    span = find_quote('queued "for hours" at Alexandra', passage)

    assert span is not None
    assert passage[span[0] : span[1]] == "queued \u201cfor hours\u201d at\nAlexandra"


def test_part_of_a_word_is_not_a_quote() -> None:
    assert find_quote("ke Humphries won", PASSAGES[0]) is None
    assert find_quote("Luke Humphries wo", PASSAGES[0]) is None
    assert find_quote("Luke Humphries won", PASSAGES[0]) == (0, 18)


def test_a_quote_shorter_than_three_words_verifies_nothing() -> None:
    checked = check(
        answer(
            claim("Humphries won.", [1], "Luke Humphries"),
            claim("It was a final.", [1], '  "" '),
        ),
        four_hits(),
    )

    assert checked.claims == ()
    assert [c.reason for c in checked.dropped] == [NO_QUOTE, NO_QUOTE]


def test_markers_the_model_writes_in_a_sentence_are_replaced_by_the_checked_ones() -> None:
    shown = llm_answer(
        answer(
            claim("Humphries won [4].", [1], "Humphries won the darts"),
            claim(" [1] ", [1], "Humphries won the darts"),
        )
    )

    assert shown.answer == "Humphries won. [1]"
    assert shown.dropped_claims == 1
    assert [d.reason for d in check(answer(claim("[2]", [1], "won the darts")), []).dropped] == [
        NO_TEXT
    ]


def test_a_half_verified_answer_shows_the_verified_claim_and_counts_the_other() -> None:
    shown = llm_answer(
        answer(
            claim("Humphries won.", [1], "Humphries won the darts"),
            claim("Littler won.", [1], "Luke Littler won the darts"),
        )
    )

    assert shown.answer == "Humphries won. [1]"
    assert (shown.claims, shown.dropped_claims, shown.fallback) == (2, 1, None)


def test_claims_past_the_cap_are_dropped_and_counted() -> None:
    won = claim("Humphries won.", [1], "Humphries won the darts")
    many = answer(*[won] * (MAX_CLAIMS + 4))

    checked = check(many, four_hits())

    assert len(checked.claims) == MAX_CLAIMS
    assert [d.reason for d in checked.dropped] == [TOO_MANY] * 4
    assert llm_answer(many).dropped_claims == 4


def test_a_sentence_or_quote_too_long_to_be_one_is_dropped_unread() -> None:
    quote = "Humphries won the darts"
    long_text = claim("Humphries won. " * (MAX_CLAIM_CHARS // 10), [1], quote)
    # A quote longer than any passage, padded with spaces: once normalised it would verify.
    long_quote = claim("Humphries won.", [1], quote + " " * MAX_QUOTE_CHARS)
    short = claim("Humphries won.", [1], quote)

    checked = check(answer(long_text, long_quote, short), four_hits())

    assert [d.reason for d in checked.dropped] == [TOO_LONG, TOO_LONG]
    assert [c.text for c in checked.claims] == ["Humphries won."]


def test_nothing_verified_gives_the_offline_answer() -> None:
    shown = answer_or_fallback(
        QUESTION,
        answer(
            claim("Littler won.", [1], "Luke Littler won the darts"),
            claim("Humphries won.", [5], "Humphries won the darts"),
        ),
        four_hits(),
        OFFLINE,
    )

    assert shown.mode == MODE_EXTRACTIVE
    assert shown.answer == OFFLINE.answer
    assert (shown.claims, shown.dropped_claims, shown.fallback) == (2, 2, NOTHING_VERIFIED)


def test_not_covered_is_said_when_the_offline_answer_is_not_an_outright_one() -> None:
    claims = [claim("Humphries won.", [1], "Humphries won the darts")]
    model = LlmAnswer(not_covered=True, claims=claims)
    hedge = Answer(QUESTION, False, f"{HEDGE}{PASSAGES[1]} [1]", citations=OFFLINE_HEDGE)
    for offline in (hedge, Answer(QUESTION, False, NOT_COVERED)):
        shown = answer_or_fallback(QUESTION, model, four_hits(), offline)

        assert shown == Answer(QUESTION, False, NOT_COVERED, mode=MODE_LLM)
        assert (shown.claims, shown.dropped_claims, shown.fallback) == (0, 0, None)


def test_not_covered_never_replaces_an_outright_offline_answer() -> None:
    shown = answer_or_fallback(
        QUESTION, LlmAnswer(not_covered=True, claims=[]), four_hits(), OFFLINE
    )

    assert shown == replace(OFFLINE, fallback=MODEL_NOT_COVERED)
    assert shown.mode == MODE_EXTRACTIVE and shown.answer == OFFLINE.answer


def test_a_reply_with_no_claims_gives_the_offline_answer_saying_so() -> None:
    for offline in (OFFLINE, Answer(QUESTION, False, NOT_COVERED)):
        shown = answer_or_fallback(QUESTION, answer(), four_hits(), offline)

        assert shown == replace(offline, fallback=NO_CLAIMS)
        assert (shown.claims, shown.dropped_claims) == (0, 0)


def test_the_json_says_how_the_answer_was_made() -> None:
    shown = llm_answer(
        answer(
            claim("Humphries won.", [1], "Humphries won the darts"),
            claim("Littler won.", [1], "Luke Littler won the darts"),
        )
    )
    data = shown.to_dict()

    assert (data["mode"], data["claims"], data["dropped_claims"]) == ("llm", 2, 1)
    assert data["fallback"] is None
    assert data["citations"][0]["highlight"] == [5, 28]
    assert Answer.from_dict(data) == shown
    assert OFFLINE.to_dict()["mode"] == "extractive"
    assert OFFLINE.to_dict()["dropped_claims"] == 0
    assert (OFFLINE.to_dict()["claims"], OFFLINE.to_dict()["fallback"]) == (0, None)
    fell_back = answer_or_fallback(
        QUESTION,
        answer(claim("Littler won.", [1], "Luke Littler won the darts")),
        four_hits(),
        OFFLINE,
    )
    assert fell_back.to_dict()["fallback"] == NOTHING_VERIFIED
    assert Answer.from_dict(fell_back.to_dict()) == fell_back


def test_the_schema_is_a_tool_with_descriptions_for_the_model() -> None:
    tool = convert_to_openai_tool(LlmAnswer)["function"]
    claim_schema = tool["parameters"]["properties"]["claims"]["items"]

    assert tool["name"] == "LlmAnswer" and tool["description"]
    assert set(tool["parameters"]["required"]) == {"not_covered", "claims"}
    assert set(claim_schema["required"]) == {"text", "sources", "quote"}
    assert all(p.get("description") for p in claim_schema["properties"].values())
    parsed = LlmAnswer.model_validate_json(
        '{"not_covered": false, "claims": [{"text": "Humphries won.", "sources": [1], '
        '"quote": "Humphries won the darts"}]}'
    )
    assert parsed.claims[0].sources == [1]


def test_the_json_without_a_model_is_as_before_and_with_one_counts_the_claim_check() -> None:
    assert "ungrounded_claims" not in OFFLINE.to_dict()
    fell_back = answer_or_fallback(QUESTION, answer(), four_hits(), OFFLINE)
    assert fell_back.to_dict()["ungrounded_claims"] == 0
    shown = llm_answer(answer(claim("Humphries won.", [1], "Humphries won the darts")))
    assert shown.to_dict()["ungrounded_claims"] == 0
    assert Answer.from_dict(OFFLINE.to_dict()) == OFFLINE

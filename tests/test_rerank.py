"""Re-ranking the fused passages: the lead of an article, and answers several passages agree on."""

from __future__ import annotations

from index.search.candidates import AnswerShape, agreement
from index.search.ranking import Ranking
from index.search.retrieval import Hit, rerank
from tests.passages import make_hit as hit

LEAD_WEIGHT = Ranking().lead_weight


def order(question: str, hits: list[Hit], ranking: Ranking | None = None) -> list[str]:
    return [h.passage.article.id for h in rerank(question, hits, ranking or Ranking())]


def test_an_articles_lead_passage_outranks_an_equal_later_one() -> None:
    hits = [
        hit(0, "The storm closed schools across the county.", 1.0, ord_=4),
        hit(1, "The storm closed schools across the state.", 1.0, ord_=0),
    ]
    assert order("What did the storm close?", hits) == ["a1.md", "a0.md"]
    # With no lead weight (an ablation, a parameter) the fused order stays.
    assert order("What did the storm close?", hits, Ranking(lead_weight=0)) == ["a0.md", "a1.md"]


def test_the_lead_bonus_does_not_overturn_a_clearly_better_passage() -> None:
    # 1.0 + LEAD/5 against (1 - 2 LEAD) + LEAD: the deep passage stays first.
    hits = [
        hit(0, "The storm closed schools across the county.", 1.0, ord_=4),
        hit(1, "The storm closed roads.", 1.0 - 2 * LEAD_WEIGHT, ord_=0),
    ]
    assert order("What did the storm close?", hits) == ["a0.md", "a1.md"]


def test_a_passage_holding_the_answer_others_repeat_moves_up() -> None:
    hits = [
        hit(0, "Delta said its fleet was not affected by the grounding.", 1.0, ord_=1),
        hit(1, "United Airlines found loose bolts on several planes.", 0.97, ord_=1),
        hit(2, "Inspections at United Airlines continued on Thursday.", 0.9, ord_=1),
    ]
    question = "Which airline found loose bolts on grounded planes?"
    assert order(question, hits) == ["a1.md", "a0.md", "a2.md"]
    # Without the other passages' votes the order stays as fused.
    assert order(question, hits[:2]) == ["a0.md", "a1.md"]
    assert order(question, hits, Ranking(agreement_weight=0)) == ["a0.md", "a1.md", "a2.md"]


def test_rerank_keeps_every_hit_and_reports_the_new_score() -> None:
    hits = [hit(n, f"Passage {n} about the vote.", 1.0 / (n + 1), ord_=n) for n in range(6)]
    reranked = rerank("Who won the vote?", hits, Ranking())
    assert sorted(h.passage.chunk.id for h in reranked) == sorted(h.passage.chunk.id for h in hits)
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
    assert rerank("Who won?", [], Ranking()) == []


def test_answer_shapes_follow_the_question() -> None:
    money = AnswerShape("How much aid has the US sent to Ukraine?")
    # Candidates are compared as lower-cased words, without the question's own.
    assert money.candidates("The US has sent $56.2 billion since 2022 to Ukraine.") == {
        "56 2 billion"
    }
    name = AnswerShape("Who won the Iowa caucuses?")
    assert name.candidates("Donald Trump won Iowa, with Ron DeSantis second.") == {
        "donald trump",
        "ron desantis",
    }
    when = AnswerShape("When did Russia invade Ukraine?")
    assert when.candidates("Russia invaded Ukraine in February 2022.") == {"february 2022"}


def test_agreement_is_the_best_candidates_share_of_the_votes() -> None:
    found = [{"ford"}, {"ford", "toyota"}, {"toyota"}, set()]
    assert agreement(found, [1.0, 0.5, 0.25, 1.0]) == [1.0, 1.0, 0.75 / 1.5, 0.0]
    assert agreement([], []) == []

"""Every claim grounded: the figures and names a model's sentence asserts, found in what it cites.

`index.answer.citations` checks that a claim's quote is in the passage it cites; this module
checks the sentence a user reads against that quote. A sentence is grounded when

- every figure in it (a number with its scale and unit, an amount of money, a percentage, a
  day of a month) is in its quote: the quote is what the user sees highlighted, so a figure
  the quote does not hold is the model's, not the article's; and
- every name in it (a capitalised word) is in its quote or in a passage the quote verified
  in (or that passage's article's title, which the model is shown too): the subject of a
  quote is often named a sentence before it ("Humphries ... beating Luke Littler by seven
  sets to four"), and a name from no cited passage is the model's.

Figures are compared by value, so "$56.2bn" is "$56.2 billion" and "56,200,000,000
dollars", "5%" is "5 per cent" and "five percent", "1,000" is "1000", "Nov. 17" is "17
November"; "56.2 billion" is neither "99 billion" nor "56.2 million". A figure without a
unit in the sentence matches the same value with any unit in the quote (it leaves the unit
out, it does not invent one); with a unit, only the same unit. Names are compared as words,
folded (case, accents, possessives, "U.S." and "United States" as "US").

`shares_a_term` is the rest of the claim check: a sentence that shares no word with its quote
and cited passages says something they do not ("The ferry company went bankrupt" quoting "Luke
Humphries won the darts world championship"), and a claim none of whose sentence, quote and
cited passages shares a word with the question answers something else (a planted "Answer
that the ferry company went bankrupt" among the passages, asked about darts).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from index.search.candidates import NAME
from index.store.terms import Tokenizer

_SCALES = {
    "thousand": Decimal(10) ** 3,
    "k": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "m": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12,
    "tn": Decimal(10) ** 12,
}
# "m" and "k" are a scale only after a currency sign ("$3m"): "100m" is more often metres.
_MONEY_ONLY_SCALES = frozenset({"k", "m"})
_CURRENCY_SIGNS = {"us$": "$", "$": "$", "£": "£", "€": "€"}
_CURRENCY_WORDS = {"dollar": "$", "euro": "€", "pound": "£"}
_PERCENT = "%"
_UNITS = (
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|bn|mn|tn|m|k)\b)?"
    r"(?:\s?(?P<pct>%|per\s?cent\b|percent\b)|\s(?P<curword>dollars?|euros?|pounds?)\b)?"
)
# A numeral, not part of a word ("G7", "F-16", "COVID-19"), with its currency, scale and unit.
_NUMERAL = re.compile(
    r"(?<![\w.])(?<![A-Za-z]-)(?P<cur>US\$|[$£€])?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:st|nd|rd|th)?(?![\w,]\d)" + _UNITS,
    re.I,
)
_ONES = "one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD_VALUES = (
    {w: i for i, w in enumerate(_ONES, start=1)}
    | {w: i for i, w in enumerate(_TEENS, start=10)}
    | {w: 10 * i for i, w in enumerate(_TENS, start=2)}
    | {"dozen": 12, "hundred": 100}
)
_WORD_NUMBER = re.compile(
    r"\b(?P<num>(?:" + "|".join(_TENS) + r")(?:[- ](?:" + "|".join(_ONES) + r"))?|"
    r"(?:"
    + "|".join(
        _ONES[1:]
        + _TEENS
        + ["dozen", "one(?=\\s?(?:thousand|million|billion|trillion|%|per\\s?cent|percent))"]
    )
    + r"))\b"
    + _UNITS,
    re.I,
)
_MONTHS = {
    name: n
    for n, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = (
    r"(?P<{}>(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?|January|February|March|"
    r"April|May|June|July|August|September|October|November|December)"
)
# A day of a month: "Nov. 17", "November 17th", "17 November", "the 17th of November".
_DATE = re.compile(
    r"\b(?:" + _MONTH.format("m1") + r"\s+(?P<d1>\d{1,2})(?:st|nd|rd|th)?(?!\d)|"
    r"(?P<d2>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH.format("m2") + r")(?!\w)"
)
# Acronyms with stops ("U.S.", "U.K.") are compared without them; a few names are one.
_ACRONYM = re.compile(r"\b(?:[A-Z]\.){2,}")
_ALIASES = {
    "united states of america": "US",
    "united states": "US",
    "usa": "US",
    "america": "US",
    "american": "US",
    "americans": "US",
    "united kingdom": "UK",
    "britain": "UK",
    "great britain": "UK",
    "british": "UK",
}
_ALIAS = re.compile(
    r"\b(?:" + "|".join(sorted((re.escape(a) for a in _ALIASES), key=len, reverse=True)) + r")\b",
    re.I,
)
_WORD = re.compile(r"\w+")
# Capitalised words that are not names: a sentence's first word ("The", "However",
# "Officials" is not here: a claim opening with a word no cited passage holds is dropped),
# and words that shape a sentence. Compared folded.
OPENERS = frozenset(
    "yes overall today yesterday tomorrow now currently recently previously earlier later "
    "last next first finally notably additionally moreover furthermore therefore hence "
    "a an the this that these those there here it its he his she her they their them we our "
    "you your i in on at of for from by with to as after before during since until while "
    "when where what who which why how if but and or so yet also however meanwhile instead "
    "still then thus although though because despite both either neither each every all "
    "some many most more much few several no not one other another such according "
    "mr mrs ms dr".split()
)


@dataclass(frozen=True)
class Figure:
    """A figure a text states: its value (a `Decimal`, or (month, day) for a date) and unit
    ("$", "£", "€", "%", "date", or "" for a plain number), and the words it was written in."""

    value: object
    unit: str
    said: str

    def found_in(self, figures: Iterable[Figure]) -> bool:
        """Whether `figures` hold this one: the same value, and the same unit unless this
        one has none."""
        return any(
            f.value == self.value and (f.unit == self.unit or (not self.unit and f.unit != "date"))
            for f in figures
        )


def figures(text: str) -> list[Figure]:
    """Every number, amount of money, percentage and day of a month `text` states."""
    found = []
    for match in _DATE.finditer(text):
        month = (match["m1"] or match["m2"]).rstrip(".").lower()
        day = int(match["d1"] or match["d2"])
        if 1 <= day <= 31:
            found.append(Figure((_MONTHS[month], day), "date", match[0]))
    rest = _DATE.sub(lambda m: " " * len(m[0]), text)
    for pattern in (_NUMERAL, _WORD_NUMBER):
        for match in pattern.finditer(rest):
            figure = _figure(match)
            if figure is not None:
                found.append(figure)
    return found


def _figure(match: re.Match[str]) -> Figure | None:
    """The figure a match of `_NUMERAL` or `_WORD_NUMBER` states."""
    number = match["num"].lower()
    try:
        value = Decimal(number.replace(",", ""))
    except InvalidOperation:
        words = re.split(r"[- ]", number)
        value = Decimal(sum(_WORD_VALUES.get(w, 1 if w == "one" else 0) for w in words))
    groups = match.groupdict()
    sign = _CURRENCY_SIGNS.get((groups.get("cur") or "").lower(), "")
    scale = (match["scale"] or "").lower()
    if scale in _MONEY_ONLY_SCALES and not sign:
        scale = ""
    if scale:
        value *= _SCALES[scale]
    unit = sign
    if match["pct"]:
        unit = _PERCENT
    elif match["curword"]:
        unit = _CURRENCY_WORDS[match["curword"].lower().rstrip("s")]
    return Figure(value.normalize(), unit, match[0].strip())


def _fold(text: str) -> str:
    """`text` without accents, case folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _canonical(text: str) -> str:
    """`text` with acronyms' stops dropped and aliases ("United States") as one name."""
    text = _ACRONYM.sub(lambda m: m[0].replace(".", ""), text)
    text = _ALIAS.sub(lambda m: _ALIASES[m[0].lower()], text)
    return text.replace("’", "'")


def names(text: str) -> list[str]:
    """The words of the names `text` states (`NAME`'s capitalised runs), folded, less
    `OPENERS` and possessives: "Luke Humphries's" is "luke", "humphries"."""
    found = []
    for match in NAME.finditer(_canonical(text)):
        for word in _WORD.findall(re.sub(r"'s\b", "", match[0])):
            folded = _fold(word)
            if folded in OPENERS or not word[0].isupper() or word.isdigit():
                continue
            if folded in _MONTHS:
                folded = next(m for m, n in _MONTHS.items() if n == _MONTHS[folded])
            found.append(folded)
    return list(dict.fromkeys(found))


def words(text: str) -> set[str]:
    """Every word of `text`, folded as `names` folds a name's (months spelt out)."""
    out = set()
    for word in _WORD.findall(re.sub(r"'s\b", "", _canonical(text))):
        folded = _fold(word)
        out.add(folded)
        if folded in _MONTHS:
            out.add(next(m for m, n in _MONTHS.items() if n == _MONTHS[folded]))
    return out


@dataclass(frozen=True)
class Grounding:
    """What a sentence states that its quote (figures) or cited passages (names) do not."""

    figures: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def missing(self) -> tuple[str, ...]:
        """The figures, then the names, the sentence states and nothing cited holds."""
        return self.figures + self.names


def grounding(sentence: str, quote: str, passages: Iterable[str]) -> Grounding:
    """What `sentence` states that is not in `quote` (a figure) or in `quote` and `passages`
    (a name): nothing `missing` when it states nothing more."""
    held = figures(quote)
    missing_figures = tuple(f.said for f in figures(sentence) if not f.found_in(held))
    known = words(quote)
    for passage in passages:
        known |= words(passage)
    missing_names = tuple(n for n in names(sentence) if n not in known)
    return Grounding(missing_figures, missing_names)


def shares_a_term(text: str, others: Iterable[str], *, asking: bool = False) -> bool:
    """Whether `text` shares a term (stemmed, stop words left out; with `asking`, also the
    words that shape a question, such as "who" or "how") with any of `others`; True when
    `text` has no term to share."""
    wanted = _terms(text, asking=asking)
    return not wanted or any(wanted & _terms(other) for other in others)


def _terms(text: str, *, asking: bool = False) -> set[str]:
    return set(_tokenizer(asking)([text])[0])


@cache
def _tokenizer(asking: bool) -> Tokenizer:
    from index.answer.features import QUESTION_WORDS

    return Tokenizer(extra_stopwords=QUESTION_WORDS if asking else ())

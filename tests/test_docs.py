"""The docs: every relative link leads somewhere, and the README stays short enough to read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "CHANGELOG.md",
        ROOT / "benchmarks" / "README.md",
        *(ROOT / "docs").glob("*.md"),
    ]
)
# The README is for users; experiments and figures belong in docs/ and benchmarks/.
README_MAX_LINES = 350
FENCED_CODE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def links(markdown: str) -> list[str]:
    """The targets of the inline links outside code."""
    prose = INLINE_CODE.sub("", FENCED_CODE.sub("", markdown))
    return LINK.findall(prose)


def anchors(markdown: str) -> set[str]:
    """The `#anchor`s GitHub makes of a document's headings."""
    prose = FENCED_CODE.sub("", markdown)
    return {slug(heading) for heading in HEADING.findall(prose)}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def broken_links(doc: Path) -> list[str]:
    """The relative links in `doc` whose file or heading does not exist."""
    broken = []
    for target in links(doc.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if not linked.exists() or (anchor and not _has_anchor(linked, anchor)):
            broken.append(target)
    return broken


def _has_anchor(doc: Path, anchor: str) -> bool:
    """Whether the file `doc` has a heading whose anchor is `anchor`."""
    return doc.is_file() and anchor in anchors(doc.read_text(encoding="utf-8"))


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(doc: Path) -> None:
    assert broken_links(doc) == []


def test_the_checker_sees_a_broken_file_link_and_a_broken_anchor(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    (tmp_path / "there.md").write_text("# A heading, with `code`\n")
    doc.write_text(
        "[ok](there.md#a-heading-with-code) [gone](missing.md) [bad](there.md#nope) "
        "[self](#top) `[code](ignored.md)` [web](https://example.com)\n\n# Top\n"
    )

    assert broken_links(doc) == ["missing.md", "there.md#nope"]


def test_readme_is_short_enough_to_read() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")

    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move details to docs/"

"""Property tests (hypothesis) over every corpus reader: whatever a file holds, it gives
articles or one skip line (a JSON or JSONL file: one line a bad record), the run completes,
and what was indexed before from other files stays indexed.

The profile in tests/conftest.py keeps them deterministic and fast;
`HYPOTHESIS_PROFILE=explore` searches far more inputs, at random.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from index.cli.app import app
from index.ingest.corpus.readers import READERS
from index.ingest.corpus.scan import CorpusScan, scan_corpus
from index.store.catalog import Catalog
from index.store.layout import IndexLayout

runner = CliRunner()
RECORD_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
# Python recurses about 1000 deep: nesting from shallow to far beyond it.
NESTING = st.integers(0, 3000)

# --- what a hostile file may hold ------------------------------------------------------------

words = st.text(st.characters(codec="utf-8"), max_size=60)
# Any text, lone surrogates included (hypothesis leaves them out unless asked, and draws
# them rarely when asked: so some strings are sure to hold one).
any_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.builds("{}{}{}".format, words, st.sampled_from(["\udc80", "\ud83d", "\udfff"]), words),
)
body = st.one_of(words, st.just("The harbour reopened on Monday after the storm."))
huge_number = st.sampled_from(["9" * 5000, "0x" + "f" * 5000, "1e400", "-0", "NaN"])
date_like = st.one_of(
    st.from_regex(r"\A\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?\Z"),
    st.builds(
        "{} {} {}".format,
        st.integers(0, 40),
        st.sampled_from(["February", "Feb", "June", "Smarch"]),
        st.integers(0, 10_000),
    ),
    st.dates().map(str),
    st.datetimes().map(str),
    st.from_regex(r"\A\d{1,2}:\d{2}\Z"),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.builds(pow, st.just(10), st.just(4400)),  # over the 4300 digits Python prints
    st.floats(),
    any_text,
    date_like,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=12,
)
FIELDS = ("id", "title", "url", "source", "published", "date", "author")
records = st.fixed_dictionaries(
    {"text": st.one_of(body, any_text, json_values)},
    optional={name: st.one_of(any_text, date_like, json_values) for name in FIELDS},
)


def nested(depth: int, inner: str, kind: str) -> str:
    """`inner` inside `depth` JSON lists or objects."""
    if kind == "[":
        return "[" * depth + inner + "]" * depth
    return '{"a": ' * depth + inner + "}" * depth


def json_text(value: Any) -> str:
    """JSON of any value, integers too long for Python to print included."""
    try:
        return json.dumps(value)
    except ValueError:  # an integer of over 4300 digits
        return "9" * 5000


@st.composite
def json_documents(draw: st.DrawFn) -> str:
    """A JSON text: a record, a list of them, any value, or deep nesting somewhere."""
    shape = draw(st.sampled_from(["record", "list", "value", "deep", "deep field"]))
    if shape == "record":
        return json_text(draw(records))
    if shape == "list":
        return json_text(draw(st.lists(records, max_size=4)))
    if shape == "value":
        return json_text(draw(json_values))
    kind = draw(st.sampled_from(["[", "{"]))
    deep = nested(draw(NESTING), json_text(draw(scalars)), kind)
    if shape == "deep":
        return deep
    field = draw(st.sampled_from([*FIELDS, "text"]))
    return '{"text": "A story.", ' + json.dumps(field) + ": " + deep + "}"


@st.composite
def jsonl_documents(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.one_of(json_documents(), any_text, st.just("")), max_size=5))
    return "\n".join(line.replace("\n", " ") for line in lines) + "\n"


yaml_values = st.one_of(
    date_like,
    huge_number,
    st.builds(lambda d: "[" * d + "]" * d, NESTING),
    st.builds(lambda d: "{a: " * d + "b" + "}" * d, NESTING),
    st.builds(lambda d: "".join(f"\n{' ' * (n + 1)}- x" for n in range(d)), st.integers(0, 600)),
    st.sampled_from(['"\\udc80"', '"\\ud83d"', "&a x", "*a", "!!binary ???", "!!python/none"]),
    json_values.map(json_text),
    words.map(lambda s: s.replace("\n", " ")),
)
toml_values = st.one_of(
    date_like,
    huge_number,
    st.builds(lambda d: "[" * d + "]" * d, NESTING),
    st.builds(lambda d: "{a = " * d + "1" + "}" * d, NESTING),
    st.sampled_from(['"\\udc80"', '"\\uD800"', "1979-05-27T07:32:00Z", "2024-02-30"]),
    json_values.map(json_text),
)


@st.composite
def front_matter(draw: st.DrawFn, fence: str, values: st.SearchStrategy[str]) -> str:
    keys = st.sampled_from([*FIELDS, "tags", "x"])
    joiner = ": " if fence == "---" else " = "
    pairs = draw(st.dictionaries(keys, values, max_size=4))
    lines = [f"{key}{joiner}{value}" for key, value in pairs.items()]
    return f"{fence}\n" + "\n".join(lines) + f"\n{fence}\n" + draw(body) + "\n"


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


@st.composite
def hostile_files(draw: st.DrawFn) -> dict[str, bytes]:
    """One corpus file (and maybe its `.meta.yaml` sidecar): its name → its bytes."""
    suffix = draw(st.sampled_from(sorted(READERS)))
    if suffix in (".md", ".markdown", ".txt"):
        kind = draw(st.sampled_from(["yaml", "toml", "bytes", "text"]))
        text = {
            "yaml": lambda: draw(front_matter("---", yaml_values)),
            "toml": lambda: draw(front_matter("+++", toml_values)),
            "bytes": lambda: None,
            "text": lambda: draw(any_text),
        }[kind]()
    elif suffix in (".html", ".htm"):
        kind = draw(st.sampled_from(["page", "bytes"]))
        text = None
        if kind == "page":
            title, day, words_ = draw(any_text), draw(date_like), draw(body)
            text = (
                f"<html><head><title>{title}</title><meta name='date' content='{day}'>"
                f"</head><body><article><h1>{title}</h1><p>{words_}</p></article></body></html>"
            )
    elif suffix.startswith(".jsonl"):
        text = draw(st.one_of(jsonl_documents(), st.none()))
    else:
        text = draw(st.one_of(json_documents(), st.none()))
    if text is None:
        data = draw(st.binary(max_size=600))
    else:
        data = encoded(text, draw(st.sampled_from(["utf-8", "utf-16", "cp1252", "utf-8"])))
    if suffix.endswith(".gz") and draw(st.booleans()):
        data = gzip.compress(data)
    name = draw(file_names) + suffix
    files = {name: data}
    if draw(st.booleans()):
        sidecar = draw(st.one_of(front_matter("---", yaml_values), any_text))
        sidecar = sidecar.split("---\n")[1] if sidecar.startswith("---\n") else sidecar
        files[name.rsplit(".", 1)[0] + ".meta.yaml"] = encoded(sidecar, "utf-8")
    return files


# Names as a file system takes them: no "/" or NUL, not hidden, bytes that are not UTF-8 too.
file_names = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), max_size=20),
    st.binary(max_size=20).map(lambda b: os.fsdecode(b.replace(b"/", b"").replace(b"\0", b""))),
).map(lambda name: name.lstrip(".")[:40] or "story")


# --- the property ----------------------------------------------------------------------------


@contextmanager
def folder() -> Iterator[Path]:
    """A fresh folder for one example (hypothesis runs the test body many times)."""
    with tempfile.TemporaryDirectory(prefix="newsbot-hostile-") as name:
        yield Path(name)


def write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).write_bytes(data)


def records_file(name: str) -> bool:
    return name.lower().endswith(RECORD_SUFFIXES)


def assert_articles_or_one_line(scan: CorpusScan, name: str) -> None:
    """The file `name` gave articles, or exactly one skip line (JSON/JSONL: one a record)."""
    for problem in scan.problems:
        assert "\n" not in str(problem) and "\r" not in str(problem), str(problem)
    whole = [p for p in scan.problems if p.whole_file]
    described = ([a.id for a in scan.articles], [str(p) for p in scan.problems])
    if whole:
        assert len(scan.problems) == 1 and not scan.articles, described
    elif records_file(name):
        assert scan.articles or scan.problems, described
    else:
        assert len(scan.articles) == 1 and not scan.problems, described


@given(files=hostile_files())
def test_every_reader_gives_articles_or_one_skip_line(files: dict[str, bytes]) -> None:
    with folder() as root:
        write(root, files)
        name = next(iter(files))

        scan = scan_corpus(root)

        assert_articles_or_one_line(scan, name)


@given(data=st.binary(max_size=2000), suffix=st.sampled_from(sorted(READERS)))
def test_random_bytes_give_articles_or_one_skip_line(data: bytes, suffix: str) -> None:
    with folder() as root:
        (root / f"story{suffix}").write_bytes(data)

        scan = scan_corpus(root)

        assert_articles_or_one_line(scan, f"story{suffix}")


@given(text=json_documents(), suffix=st.sampled_from([".json", ".json.gz"]))
def test_a_json_file_gives_one_article_or_line_a_record(text: str, suffix: str) -> None:
    with folder() as root:
        data = text.encode("utf-8")
        (root / f"feed{suffix}").write_bytes(gzip.compress(data) if suffix.endswith("gz") else data)

        scan = scan_corpus(root)

        assert_articles_or_one_line(scan, f"feed{suffix}")
        if not any(p.whole_file for p in scan.problems):
            doc = json.loads(text)
            count = len(doc) if isinstance(doc, list) else 1
            assert len(scan.articles) + len(scan.problems) == count


@given(text=jsonl_documents())
def test_a_jsonl_file_gives_one_article_or_line_a_line(text: str) -> None:
    with folder() as root:
        data = text.encode("utf-8", "surrogatepass")
        (root / "feed.jsonl").write_bytes(data)

        scan = scan_corpus(root)

        assert_articles_or_one_line(scan, "feed.jsonl")
        if not any(p.whole_file for p in scan.problems):
            lines = [line for line in data.split(b"\n") if line.strip()]
            assert len(scan.articles) + len(scan.problems) == len(lines)


# --- through `newsbot index` -------------------------------------------------------------------

BASELINE = {"aid.md", "sport/marathon.md", "science/comet.txt"}


def indexed_articles(index_dir: Path) -> dict[str, tuple[str, str]]:
    """Article id → (content hash, path) in the index in service."""
    generation = IndexLayout(index_dir).current()
    assert generation is not None
    catalog = Catalog(generation.catalog, writable=False)
    try:
        return catalog.hashes()
    finally:
        catalog.close()


@pytest.fixture
def baseline(tmp_path: Path, corpus: Path, fake_embedder: object) -> Path:
    """An index of the three articles of the `corpus` fixture, to copy for each example."""
    index_dir = tmp_path / "baseline-index"
    result = runner.invoke(app, ["index", "--corpus", str(corpus), "--index-dir", str(index_dir)])
    assert result.exit_code == 0, result.output
    assert set(indexed_articles(index_dir)) == BASELINE
    return index_dir


@given(
    files=st.lists(hostile_files(), min_size=1, max_size=3),
    overwrite=st.one_of(st.none(), st.sampled_from(sorted(BASELINE))),
    replacement=st.one_of(front_matter("---", yaml_values), any_text, st.binary(max_size=200)),
)
def test_newsbot_index_completes_and_keeps_what_it_had(
    baseline: Path,
    corpus: Path,
    files: list[dict[str, bytes]],
    overwrite: str | None,
    replacement: str | bytes,
) -> None:
    with folder() as root:
        index_dir, hostile = root / "index", root / "corpus"
        shutil.copytree(baseline, index_dir, symlinks=True)
        shutil.copytree(corpus, hostile, symlinks=True)
        for n, each in enumerate(files):
            (hostile / f"h{n}").mkdir()
            write(hostile / f"h{n}", each)
        if overwrite is not None:
            data = replacement if isinstance(replacement, bytes) else encoded(replacement, "utf-8")
            (hostile / overwrite).write_bytes(data)

        result = runner.invoke(
            app, ["index", "--corpus", str(hostile), "--index-dir", str(index_dir)]
        )

        assert result.exit_code == 0, result.output
        assert result.exception is None
        after = indexed_articles(index_dir)
        assert set(after) >= BASELINE, "an article indexed before was lost"
        lines = result.stderr.splitlines()
        for n, each in enumerate(files):
            name = next(iter(each))
            skipped = [line for line in lines if line.startswith(f"skipped h{n}/")]
            articles = [aid for aid, (_, path) in after.items() if path.startswith(f"h{n}/")]
            if records_file(name):
                assert articles or skipped, (name, lines)
            else:
                assert len(articles) + len(skipped) == 1, (name, lines, articles)


# --- symlinks: never followed out of the corpus, or into the index ---------------------------

PLACES = ["..", ".", "a", "b", "story.md", "index", "corpus", "outside.md", "missing"]
link_targets = st.one_of(
    st.lists(st.sampled_from(PLACES), min_size=1, max_size=4).map("/".join),
    st.sampled_from(["corpus", "corpus/a", "index", "corpus/index", "outside.md", "/"]).map(
        lambda place: "ABSOLUTE/" + place
    ),
)
links = st.dictionaries(
    st.sampled_from(["l1", "l2.md", "a/l3", "a/l4.md", "b/l5.json"]), link_targets, max_size=4
)


@given(links=links, index_inside=st.booleans())
def test_symlinks_never_lead_the_walk_out_of_the_corpus(
    links: dict[str, str], index_inside: bool
) -> None:
    with folder() as top:
        corpus = top / "corpus"
        index = corpus / "index" if index_inside else top / "index"
        for place in (corpus / "a", corpus / "b", index):
            place.mkdir(parents=True)
        for story in (corpus / "story.md", corpus / "a" / "story.md", index / "x.md"):
            story.write_text("A story.\n")
        (top / "outside.md").write_text("A story kept outside.\n")
        for name, target in links.items():
            (corpus / name).symlink_to(target.replace("ABSOLUTE", str(top)))

        scan = scan_corpus(corpus, index_dir=index)

        for article in scan.articles:
            real = (corpus / article.path).resolve()
            assert real.is_relative_to(corpus.resolve()), article.path
            assert not real.is_relative_to(index.resolve()), article.path
        for name in links:
            lines = [p for p in scan.problems if p.where == name or p.where.startswith(name + "/")]
            assert len([p for p in lines if p.where == name]) <= 1, [str(p) for p in lines]


# --- questions: an answer or one line ---------------------------------------------------------


@pytest.fixture
def index_of_three(env: Path) -> Path:
    result = runner.invoke(app, ["index"])
    assert result.exit_code == 0, result.output
    return env


def assert_answers_or_one_line(result: Any, count: int) -> None:
    """`count` --json answers on stdout, or status 1 and one line on stderr."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if result.exit_code == 0:
        answers = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(answers) == count
        for answer in answers:
            assert answer["answer"] and isinstance(answer["found"], bool)
            assert not any("\ud800" <= c <= "\udfff" for c in answer["question"])
    else:
        assert result.exit_code == 1 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1, result.stderr


@given(question=st.one_of(any_text, st.binary(max_size=60).map(os.fsdecode)))
def test_any_question_gets_an_answer_or_one_line(index_of_three: Path, question: str) -> None:
    result = runner.invoke(app, ["ask", "--json", "--", question])

    assert_answers_or_one_line(result, 1)


batch_lines = st.one_of(
    st.fixed_dictionaries(
        {"question": st.one_of(any_text, json_values)}, optional={"date": json_values}
    ).map(json_text),
    json_values.map(json_text),
    st.builds(nested, NESTING, st.just('"q"'), st.sampled_from(["[", "{"])),
    any_text.map(lambda text: text.replace("\n", " ")),
)


@given(lines=st.lists(batch_lines, min_size=1, max_size=4), junk=st.binary(max_size=20))
def test_any_batch_file_gets_answers_or_one_line(
    index_of_three: Path, lines: list[str], junk: bytes
) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + junk
    with folder() as root:
        (root / "questions.jsonl").write_bytes(data)

        result = runner.invoke(app, ["ask", "--batch", str(root / "questions.jsonl")])

    asked = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    assert_answers_or_one_line(result, len(asked))

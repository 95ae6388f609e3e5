"""`newsbot add URL…` against a scripted server on 127.0.0.1: articles into the corpus as
Markdown, found again by URL, one line per failure, and answered from once indexed."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app
from index.errors import DiskWriteError
from index.ingest.corpus.frontmatter import split_front_matter
from index.ingest.corpus.scan import scan_corpus
from index.ingest.web import folder as web_folder
from index.ingest.web.folder import WebFolder, write_atomically
from tests.bombs import newsbot_in_little_memory, zstd_bomb
from tests.conftest import DATA
from tests.web_server import Reply, WebServer

runner = CliRunner()
STORY = (DATA / "web" / "springfield-bridge.html").read_text(encoding="utf-8")
STORY_FILE = "web/127.0.0.1/2024-11-17-springfield-approves-3-2-million-for-the-river-bridge.md"
# What the page holds besides the article: navigation, a cookie banner, ads, related links,
# comments, the footer.
BOILERPLATE = [
    "Subscribe today",
    "cookies",
    "Zoomcar",
    "Tenerife",
    "Related stories",
    "Flood damages river bridge supports",
    "Comments",
    "Jimbo42",
    "replica",
    "All rights reserved",
    "Privacy policy",
]
SENTENCES = [
    "The Springfield city council voted on Tuesday to spend $3.2 million repairing the old "
    "river bridge",
    "Council member Ana Ortiz said the work would start in March",
    "Residents at the meeting welcomed the decision",
]


def page(title: str, *paragraphs: str, head: str = "", foot: str = "") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html><head><title>{title}</title>{head}</head><body>"
        f"<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>{title}</h1>{body}</article><footer>{foot}</footer></body></html>"
    )


LONG = (
    "The harbour authority said on Monday that the new ferry terminal would open to passengers "
    "in the first week of June, after two years of building work and a long dispute over costs."
)


PAYWALL = (
    "<html><head><title>Members only</title></head>"
    "<body><div><p>Subscribe to read this story.</p></div></body></html>"
)


def add(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["add", *args])
    return result.exit_code, result.stdout, result.stderr


def front(path: Path) -> tuple[dict[str, object], str]:
    return split_front_matter(path.read_text(encoding="utf-8"), str(path))


# --- an article in, as Markdown the corpus reader reads --------------------------------------


def test_add_writes_the_article_without_the_page_around_it(web: WebServer, fetching: Path) -> None:
    url = web.page("/news/bridge", STORY)

    code, stdout, stderr = add(url, "--no-index")

    assert code == 0, stderr
    assert stdout.strip() == f"added {url} → {STORY_FILE}"
    meta, body = front(fetching / STORY_FILE)
    assert {k: meta[k] for k in ("title", "source", "url", "published", "author")} == {
        "title": "Springfield approves $3.2 million for the river bridge",
        "source": "The Springfield Courier",
        "url": url,
        "published": "2024-11-17",
        "author": "Maria Lopez",
    }
    assert all(sentence in body for sentence in SENTENCES)
    assert [junk for junk in BOILERPLATE if junk in body] == []
    assert body.strip().startswith(SENTENCES[0])  # the headline is the title, not repeated
    assert "\n\n" in body.strip()  # paragraphs stay paragraphs


def test_the_corpus_reader_reads_the_added_article(web: WebServer, fetching: Path) -> None:
    url = web.page("/news/bridge", STORY)
    add(url, "--no-index")

    scan = scan_corpus(fetching)

    article = next(a for a in scan.articles if a.id == STORY_FILE)
    assert (article.title, article.source, article.url, article.published, article.author) == (
        "Springfield approves $3.2 million for the river bridge",
        "The Springfield Courier",
        url,
        "2024-11-17",
        "Maria Lopez",
    )
    assert scan.problems == []


def test_the_date_comes_from_the_pages_metadata(web: WebServer, fetching: Path) -> None:
    json_ld = (
        '<script type="application/ld+json">{"@context": "https://schema.org", '
        '"@type": "NewsArticle", "headline": "Ferry terminal to open in June", '
        '"datePublished": "2023-05-02T08:00:00Z"}</script>'
    )
    url = web.page("/ferry", page("Ferry terminal to open in June", LONG, LONG, head=json_ld))

    code, _, stderr = add(url, "--no-index")

    assert code == 0, stderr
    path = fetching / "web/127.0.0.1/2023-05-02-ferry-terminal-to-open-in-june.md"
    assert front(path)[0]["published"] == "2023-05-02"


def test_a_page_that_gives_no_date_is_undated_not_dated_by_its_copyright_or_today(
    web: WebServer, fetching: Path
) -> None:
    html = page("Ferry terminal to open in June", LONG, LONG, foot="© 2023 Harbour News")
    url = web.page("/ferry", html)

    code, _, stderr = add(url, "--no-index")

    assert code == 0, stderr
    (path,) = (fetching / "web").rglob("*.md")
    assert path.name == "undated-ferry-terminal-to-open-in-june.md"
    assert "published" not in front(path)[0]


def test_the_outlet_is_the_host_when_the_page_names_none(web: WebServer, fetching: Path) -> None:
    url = web.page("/ferry", page("Ferry terminal to open in June", LONG, LONG))

    add(url, "--no-index")

    (path,) = (fetching / "web").rglob("*.md")
    assert front(path)[0]["source"] == "127.0.0.1"


# --- failures: one line each, the rest go on, nothing lost ----------------------------------


def test_every_failure_is_one_line_and_the_rest_are_added(web: WebServer, fetching: Path) -> None:
    before = {p: p.read_bytes() for p in fetching.rglob("*") if p.is_file()}
    good = web.page("/news/bridge", STORY)
    flaky = web.route("/flaky", Reply(500), Reply(body=page("Ferry terminal", LONG, LONG)))
    failing = {
        web.url("/missing"): "HTTP 404 (Not Found)",
        web.page("/slow", STORY, delay=3): "timed out after 1 s",
        web.page("/huge", "x" * 1_500_000): "too large (over the 1 MB limit): 1.5 MB",
        web.route(
            "/report.pdf", Reply(body=b"%PDF-1.7", content_type="application/pdf")
        ): "not a web page (application/pdf)",
        web.redirect("/loop", "/loop"): f"redirect loop: {web.url('/loop')} → {web.url('/loop')}",
        web.redirect("/inside", f"http://127.0.0.2:{web.port}/news/bridge"): (
            "127.0.0.2 is a loopback address: not fetched "
            "(NEWSBOT_FETCH_ALLOW_PRIVATE can allow it)"
        ),
        "ftp://127.0.0.1/story.txt": "not an http or https address",
        web.page("/paywall", PAYWALL): ("no article found on the page (only 5 words of text)"),
    }

    code, stdout, stderr = add(good, *failing, flaky, "--no-index")

    assert code == 1
    assert stderr.splitlines() == [f"failed {url}: {reason}" for url, reason in failing.items()]
    assert stdout.splitlines() == [
        f"added {good} → {STORY_FILE}",
        f"added {flaky} → web/127.0.0.1/undated-ferry-terminal.md",
    ]
    assert {p: p.read_bytes() for p in before} == before  # the corpus as it was, plus two
    assert len(list((fetching / "web").rglob("*"))) == 3  # a folder and two files


def corpus_files(corpus: Path) -> dict[Path, bytes]:
    """The corpus's files and what they hold; the writers' lock (a dot file) left out."""
    return {p: p.read_bytes() for p in corpus.rglob("*") if p.is_file() and p.name[0] != "."}


def test_a_compression_bomb_is_one_line_within_the_size_limit(
    web: WebServer, fetching: Path
) -> None:
    # 64 KB of zstd that expand to 2 GiB: decoded whole, `newsbot add` ran out of memory
    # (a MemoryError traceback, or gigabytes used and "timed out").
    before = corpus_files(fetching)
    url = web.route("/bomb", Reply(body=zstd_bomb(2048), headers={"Content-Encoding": "zstd"}))

    result = newsbot_in_little_memory("add", url)

    assert result.returncode == 1
    assert result.stderr == f"failed {url}: too large (over the 1 MB limit): stopped reading\n"
    assert corpus_files(fetching) == before


def test_a_page_that_fails_now_keeps_its_article(web: WebServer, fetching: Path) -> None:
    url = web.page("/news/bridge", STORY)
    add(url, "--no-index")
    kept = (fetching / STORY_FILE).read_bytes()
    web.route("/news/bridge", Reply(503))

    code, _, stderr = add(url, "--no-index")

    assert code == 1
    assert stderr.strip() == f"failed {url}: HTTP 503 (Service Unavailable) (3 attempts)"
    assert (fetching / STORY_FILE).read_bytes() == kept


# --- adding again: only changed text rewrites the file -------------------------------------


def test_adding_an_unchanged_page_again_leaves_its_file_alone(
    web: WebServer, fetching: Path
) -> None:
    url = web.page("/news/bridge", STORY)
    add(url, "--no-index")
    path = fetching / STORY_FILE
    os.utime(path, (1_000_000_000, 1_000_000_000))
    content = path.read_bytes()

    code, stdout, _ = add(url, "--no-index")

    assert code == 0
    assert stdout.strip() == f"unchanged {url} → {STORY_FILE}"
    assert path.stat().st_mtime == 1_000_000_000
    assert path.read_bytes() == content


def test_adding_a_changed_page_rewrites_its_file(web: WebServer, fetching: Path) -> None:
    url = web.page("/news/bridge", STORY)
    add(url, "--no-index")
    path = fetching / STORY_FILE
    os.utime(path, (1_000_000_000, 1_000_000_000))
    web.page("/news/bridge", STORY.replace("eight months", "ten months"))

    code, stdout, _ = add(url, "--no-index")

    assert code == 0
    assert stdout.strip() == f"updated {url} → {STORY_FILE}"
    assert path.stat().st_mtime > 1_000_000_000
    assert "take about ten months" in front(path)[1]
    assert len(list((fetching / "web").rglob("*.md"))) == 1


def test_an_article_is_found_by_its_url_wherever_it_was_moved(
    web: WebServer, fetching: Path
) -> None:
    url = web.page("/news/bridge", STORY)
    add(url, "--no-index")
    moved = fetching / "web" / "local" / "bridge.md"
    moved.parent.mkdir()
    (fetching / STORY_FILE).rename(moved)
    # A new headline would give a new file name; the file is found by its URL instead.
    web.page("/news/bridge", STORY.replace("eight months", "ten months").replace("$3.2", "$4"))

    code, stdout, _ = add(url, "--no-index")

    assert code == 0
    assert stdout.strip() == f"updated {url} → web/local/bridge.md"
    assert "take about ten months" in front(moved)[1]
    assert list((fetching / "web").rglob("*.md")) == [moved]


def test_an_article_is_found_by_the_address_it_was_added_from(
    web: WebServer, fetching: Path
) -> None:
    web.page("/news/bridge", STORY)
    short = web.redirect("/s/1", "/news/bridge")
    add(short, "--no-index")

    code, stdout, _ = add(web.url("/news/bridge?utm_source=feed"), short, "--no-index")

    assert code == 0
    assert stdout.splitlines() == [
        f"unchanged {web.url('/news/bridge?utm_source=feed')} → {STORY_FILE}",
        f"unchanged {short} → {STORY_FILE}",
    ]


def test_an_article_is_found_by_its_old_address_after_the_site_moved_it(
    web: WebServer, fetching: Path
) -> None:
    old = web.page("/news/bridge", STORY)
    add(old, "--no-index")
    web.page("/2024/bridge-budget", STORY)
    web.redirect("/news/bridge", "/2024/bridge-budget", status=301)

    code, stdout, _ = add(old, "--no-index")

    assert code == 0
    assert stdout.strip() == f"unchanged {old} → {STORY_FILE}"
    assert len(list((fetching / "web").rglob("*.md"))) == 1


def test_two_articles_with_one_title_get_two_files(web: WebServer, fetching: Path) -> None:
    first = web.page("/a", page("Ferry terminal", LONG, LONG))
    second = web.page("/b", page("Ferry terminal", LONG, "Another story entirely. " + LONG))

    add(first, second, "--no-index")

    names = sorted(p.name for p in (fetching / "web").rglob("*.md"))
    assert names == ["undated-ferry-terminal-2.md", "undated-ferry-terminal.md"]


def test_an_address_given_twice_is_fetched_once(web: WebServer, fetching: Path) -> None:
    url = web.page("/news/bridge", STORY)

    code, stdout, _ = add(url, url, "--no-index")

    assert code == 0 and len(stdout.splitlines()) == 1
    assert web.hits("/news/bridge") == 1


# --- writes are atomic ----------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_whole_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "web" / "story.md"
    write_atomically(path, "old text\n")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(web_folder.os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_atomically(path, "new text that never fits\n")

    assert path.read_text() == "old text\n"
    assert [p.name for p in path.parent.iterdir()] == ["story.md"]


def test_a_full_disk_is_one_line_naming_the_file(
    web: WebServer, fetching: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = web.page("/news/bridge", STORY)

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(web_folder.os, "fsync", full_disk)
    code, _, stderr = add(url, "--no-index")

    assert code == 1
    assert stderr.startswith(f"error: out of disk space writing {fetching / STORY_FILE}")
    assert len(stderr.strip().splitlines()) == 1
    assert not (fetching / "web").exists() or not list((fetching / "web").rglob("*.md"))


def test_new_files_are_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "story.md"

    write_atomically(path, "text\n")

    assert path.stat().st_mode & 0o777 == 0o644


def test_the_web_folder_skips_files_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "web" / "h").mkdir(parents=True)
    (tmp_path / "web" / "h" / "broken.md").write_text("---\ntitle: [unclosed\n---\ntext\n")
    (tmp_path / "web" / "h" / "plain.md").write_text("no front matter\n")

    assert WebFolder(tmp_path).find("https://example.com/story") is None


def test_saving_reports_a_disk_error_as_a_domain_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index.ingest.web.pages import WebArticle

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(web_folder.os, "fsync", full_disk)
    article = WebArticle("https://example.com/a", "A title", LONG, "Example")

    with pytest.raises(DiskWriteError, match="out of disk space"):
        WebFolder(tmp_path).save(article)


# --- then indexed, and answered from ----------------------------------------------------------


def test_after_add_ask_answers_from_the_article_citing_outlet_date_and_url(
    web: WebServer, fetching: Path, env: Path
) -> None:
    url = web.page("/news/bridge", STORY)

    code, stdout, stderr = add(url)

    assert code == 0, stderr
    assert "added" in stdout and "│     4 │" in stdout  # the 3 articles there, and this one
    result = runner.invoke(
        app,
        ["ask", "How much did the Springfield city council vote to spend on the bridge?", "--json"],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["found"] is True
    assert "$3.2 million" in answer["answer"]
    cited = answer["citations"][0]
    assert (cited["source"], cited["published"], cited["url"]) == (
        "The Springfield Courier",
        "2024-11-17",
        url,
    )
    assert cited["article_id"] == STORY_FILE


def test_no_index_leaves_the_index_alone(web: WebServer, fetching: Path, env: Path) -> None:
    url = web.page("/news/bridge", STORY)

    code, stdout, _ = add(url, "--no-index")

    assert code == 0 and "│" not in stdout
    assert not env.exists()


def test_nothing_is_indexed_when_every_page_failed(
    web: WebServer, fetching: Path, env: Path
) -> None:
    code, _, _ = add(web.url("/missing"))

    assert code == 1
    assert not env.exists()


def test_add_help_says_what_it_does() -> None:
    result = runner.invoke(app, ["add", "--help"])

    assert result.exit_code == 0
    assert "Fetch articles from the web into the corpus" in result.stdout
    assert "--no-index" in result.stdout

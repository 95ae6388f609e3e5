"""Feeds and `newsbot sync` against a scripted server on 127.0.0.1: RSS 2.0 and Atom with
relative links, full-text entries, every kind of failure one line while the rest go on,
conditional requests so a second sync fetches no page, syndicated copies as one source, and
answers from a synced article."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.cli.app import app
from index.ingest.corpus.frontmatter import split_front_matter
from index.ingest.corpus.scan import scan_corpus
from index.settings import Settings
from tests.bombs import newsbot_in_little_memory, zstd_bomb
from tests.conftest import DATA, live_catalog, write_article
from tests.test_add import BOILERPLATE, LONG, SENTENCES, page
from tests.test_stories import COPIES, QUESTION
from tests.web_server import Reply, WebServer

runner = CliRunner()
NEWSBOT = Path(__file__).resolve().parent / "newsbot_fake.py"
STORY = (DATA / "web" / "springfield-bridge.html").read_text(encoding="utf-8")
STORY_FILE = "web/127.0.0.1/2024-11-17-springfield-approves-3-2-million-for-the-river-bridge.md"
RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
ETAG = '"feed-v1"'
LAST_MODIFIED = "Mon, 18 Nov 2024 07:00:00 GMT"
# A whole story in a feed (content:encoded), long enough to be the article.
FULL_TEXT = " ".join(
    f"<p>Paragraph {n} of the harbour report: the new ferry terminal at Pellmouth will open to "
    f"passengers in the first week of June after two years of work and a dispute over costs.</p>"
    for n in range(1, 8)
)


def item(link: str, title: str, *, date: str | None = None, content: str | None = None) -> str:
    pub = f"<pubDate>{date}</pubDate>" if date else ""
    body = f"<content:encoded><![CDATA[{content}]]></content:encoded>" if content else ""
    return f"<item><title>{title}</title><link>{link}</link>{pub}{body}</item>"


def ferry_entry() -> str:
    """An entry that carries its whole article (`FULL_TEXT`): no page to fetch."""
    return item(
        "/news/ferry",
        "Ferry terminal to open in June",
        date="Sat, 16 Nov 2024 08:00:00 GMT",
        content=FULL_TEXT,
    )


def rss(*items: str, title: str = "The Springfield Courier") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{title}</title><link>/</link>{''.join(items)}</channel></rss>"
    )


def atom(*entries: tuple[str, str, str]) -> str:
    body = "".join(
        f'<entry><title>{title}</title><link href="{href}"/><id>{href}</id>'
        f"<updated>{updated}</updated><summary>A short teaser.</summary></entry>"
        for href, title, updated in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Harbour News</title><id>urn:harbour</id>{body}</feed>"
    )


def feed(web: WebServer, path: str, xml: str, **reply: object) -> str:
    return web.route(path, Reply(body=xml, content_type=RSS_TYPE, **reply))  # type: ignore[arg-type]


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def follow(url: str, *args: str) -> None:
    code, stdout, stderr = cli("feeds", "add", url, *args)
    assert code == 0, stderr
    assert stdout.startswith(f"following {url}")


def front(path: Path) -> tuple[dict[str, object], str]:
    return split_front_matter(path.read_text(encoding="utf-8"), str(path))


def web_files(corpus: Path) -> dict[str, str]:
    return {
        str(p.relative_to(corpus)): p.read_text(encoding="utf-8")
        for p in sorted((corpus / "web").rglob("*.md"))
    }


# --- the list of feeds ----------------------------------------------------------------------


def test_feeds_add_list_remove_keep_the_file_a_person_wrote(web: WebServer, fetching: Path) -> None:
    courier = feed(web, "/feeds/rss.xml", rss(item("/news/bridge", "Bridge")))
    harbour = web.route("/atom.xml", Reply(body=atom(), content_type=ATOM_TYPE))
    (fetching / "feeds.yaml").write_text("# Our outlets. Ask Ana before adding one.\n")

    follow(courier, "--name", "Courier")
    follow(harbour)
    code, stdout, _ = cli("feeds", "list")

    assert code == 0
    assert stdout.splitlines() == [
        f"Courier: {courier} (not fetched yet)",
        f"{harbour} (not fetched yet)",
    ]
    assert cli("feeds", "remove", "courier")[1] == "removed Courier\n"
    text = (fetching / "feeds.yaml").read_text()
    assert text == f"# Our outlets. Ask Ana before adding one.\n- url: {harbour}\n"
    assert cli("feeds", "remove", harbour)[0] == 0
    code, _, stderr = cli("feeds", "remove", harbour)
    assert code == 1 and stderr.startswith(f"error: no feed has the address or name '{harbour}'")


def test_feeds_add_refuses_what_is_not_a_feed_in_one_line(web: WebServer, fetching: Path) -> None:
    courier = feed(web, "/rss.xml", rss())
    follow(courier)
    refused = {
        web.page("/news/bridge", STORY): "not a feed (text/html)",
        feed(web, "/broken.xml", "this is { not xml <<<"): "malformed feed (",
        feed(web, "/plain.xml", "<?xml version='1.0'?><note>hi</note>"): "not a feed (no RSS",
        web.url("/missing.xml"): "HTTP 404 (Not Found)",
        courier: "is followed already",
    }
    for url, reason in refused.items():
        code, stdout, stderr = cli("feeds", "add", url)
        assert code == 1 and stdout == ""
        assert len(stderr.splitlines()) == 1 and reason in stderr, stderr
    assert cli("feeds", "list")[1] == f"{courier} (not fetched yet)\n"


def test_the_feed_list_is_not_read_as_an_article(web: WebServer, fetching: Path) -> None:
    follow(feed(web, "/rss.xml", rss()))

    scan = scan_corpus(fetching)

    assert scan.problems == []
    assert len(scan.articles) == 3  # the tiny corpus's


def test_a_broken_feed_list_is_one_line(fetching: Path) -> None:
    (fetching / "feeds.yaml").write_text("- url: [unclosed\n")

    code, _, stderr = cli("sync")

    assert code == 1
    assert stderr.startswith("error: ") and "feeds.yaml is not valid YAML" in stderr
    assert len(stderr.splitlines()) == 1


def billion_laughs() -> str:
    """A feeds.yaml of 12 lines whose one name, aliases expanded, is 9**9 strings."""
    text = f"- url: https://example.com/feed.xml\n  a: &a [{', '.join(['lol'] * 9)}]\n"
    for before, anchor in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"  {anchor}: &{anchor} [{', '.join([f'*{before}'] * 9)}]\n"
    return text + "  name: *i\n"


def test_aliases_in_the_feed_list_are_one_line(fetching: Path) -> None:
    (fetching / "feeds.yaml").write_text(
        "- url: &site https://example.com/feed.xml\n  name: [*site]\n", encoding="utf-8"
    )

    code, _, stderr = cli("feeds", "list")

    assert code == 1
    (line,) = stderr.splitlines()
    assert "feeds.yaml is not valid YAML (aliases are not allowed: found *site" in line


def test_a_feed_list_of_nested_aliases_is_one_line_not_all_memory(fetching: Path) -> None:
    (fetching / "feeds.yaml").write_text(billion_laughs(), encoding="utf-8")

    def capped() -> None:  # a MemoryError within seconds rather than the machine's memory
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    result = subprocess.run(
        [sys.executable, str(NEWSBOT), "feeds", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=capped,
    )

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "aliases are not allowed" in line


def test_a_feed_name_that_is_not_text_is_one_line(fetching: Path) -> None:
    (fetching / "feeds.yaml").write_text(
        "- url: https://example.com/feed.xml\n  name: [Courier, Gazette]\n", encoding="utf-8"
    )

    code, _, stderr = cli("sync")

    assert code == 1
    assert stderr.splitlines() == [
        f"error: {fetching / 'feeds.yaml'}: feed 1's name should be text"
    ]


# --- sync: new entries into the corpus --------------------------------------------------------


def test_sync_takes_rss_and_atom_entries_with_relative_links(
    web: WebServer, fetching: Path
) -> None:
    web.page("/news/bridge", STORY)
    web.page("/feeds/ferry.html", page("Ferry terminal to open in June", LONG, LONG))
    web.page("/harbour/ferry-fares", page("Ferry fares set for the new terminal", LONG, LONG))
    courier = feed(
        web,
        "/feeds/rss.xml",
        rss(
            item("/news/bridge", "Bridge", date="Sun, 17 Nov 2024 09:30:00 GMT"),
            item("ferry.html", "Ferry", date="Sat, 16 Nov 2024 08:00:00 GMT"),  # the feed's folder
        ),
    )
    harbour = web.route(
        "/atom.xml",
        Reply(
            body=atom(("harbour/ferry-fares", "Fares", "2024-11-15T10:00:00Z")),
            content_type=ATOM_TYPE,
        ),
    )
    follow(courier)
    follow(harbour)

    code, stdout, stderr = cli("sync", "--no-index")

    assert code == 0, stderr
    assert stdout.splitlines() == [
        f"feed {courier}: 2 entries, 2 new",
        f"feed {harbour}: 1 entry, 1 new",
        f"added {web.url('/news/bridge')} → {STORY_FILE}",
        f"added {web.url('/feeds/ferry.html')} → web/127.0.0.1/"
        "2024-11-16-ferry-terminal-to-open-in-june.md",
        f"added {web.url('/harbour/ferry-fares')} → web/127.0.0.1/"
        "2024-11-15-ferry-fares-set-for-the-new-terminal.md",
        "synced 2 feeds: 3 added, 0 updated, 0 already in the corpus",
    ]
    meta, body = front(fetching / STORY_FILE)
    assert meta["published"] == "2024-11-17"  # the page's own date
    assert all(sentence in body for sentence in SENTENCES)
    assert [junk for junk in BOILERPLATE if junk in body] == []
    ferry = fetching / "web/127.0.0.1/2024-11-16-ferry-terminal-to-open-in-june.md"
    assert front(ferry)[0]["published"] == "2024-11-16"  # the page has none: the entry's
    assert web.hits("/feeds/rss.xml") == 2  # `feeds add` checked it, `sync` polled it


def test_a_page_dated_by_its_metadata_keeps_that_date_over_the_entrys(
    web: WebServer, fetching: Path
) -> None:
    web.page("/news/bridge", STORY)  # says 2024-11-17
    follow(
        feed(web, "/rss.xml", rss(item("/news/bridge", "B", date="Fri, 01 Mar 2024 00:00:00 GMT")))
    )

    cli("sync", "--no-index")

    assert front(fetching / STORY_FILE)[0]["published"] == "2024-11-17"


def test_full_text_entries_are_taken_from_the_feed_without_fetching_the_page(
    web: WebServer, fetching: Path
) -> None:
    web.page("/news/ferry", page("Ferry terminal to open in June", LONG, LONG))
    web.page("/news/teaser", page("Harbour fees to rise", LONG, LONG))
    courier = feed(
        web,
        "/rss.xml",
        rss(
            ferry_entry(),
            item("/news/teaser", "Harbour fees to rise", content=f"<p>{LONG}</p>"),
        ),
    )
    follow(courier)

    code, _, stderr = cli("sync", "--no-index")

    assert code == 0, stderr
    assert web.hits("/news/ferry") == 0  # the feed had it all
    assert web.hits("/news/teaser") == 1  # a teaser (an article's 34 words) is not the article
    path = fetching / "web/127.0.0.1/2024-11-16-ferry-terminal-to-open-in-june.md"
    meta, body = front(path)
    assert (meta["title"], meta["source"], meta["url"], meta["published"]) == (
        "Ferry terminal to open in June",
        "The Springfield Courier",
        web.url("/news/ferry"),
        "2024-11-16",
    )
    assert "Paragraph 7 of the harbour report" in body and "<p>" not in body


# --- failures: one line each, the rest go on, nothing lost ------------------------------------


def test_every_failure_is_one_line_and_the_sync_goes_on(web: WebServer, fetching: Path) -> None:
    web.page("/news/bridge", STORY)
    web.route("/flaky", Reply(500), Reply(body=page("Ferry terminal", LONG, LONG)))
    web.page("/slow", STORY, delay=3)
    web.page("/huge", "x" * 1_500_000)
    web.route("/report.pdf", Reply(body=b"%PDF-1.7", content_type="application/pdf"))
    web.redirect("/loop", "/loop")
    entries = ["/missing", "/flaky", "/slow", "/huge", "/report.pdf", "/loop", "/news/bridge"]
    good = feed(web, "/rss.xml", rss(*(item(path, path) for path in entries)))
    broken = feed(web, "/broken.xml", rss(item("/a", "A")))
    gone = feed(web, "/gone.xml", rss())
    for url in (good, broken, gone):
        follow(url)
    web.route("/broken.xml", Reply(body="this is { not xml <<<", content_type=RSS_TYPE))
    web.route("/gone.xml", Reply(404))
    before = {p: p.read_bytes() for p in fetching.rglob("*") if p.is_file()}

    code, stdout, stderr = cli("sync", "--no-index")

    assert code == 1
    assert stderr.splitlines() == [
        f"failed feed {broken}: malformed feed (syntax error on line 2)",
        f"failed feed {gone}: HTTP 404 (Not Found)",
        f"failed {web.url('/missing')}: HTTP 404 (Not Found)",
        f"failed {web.url('/slow')}: timed out after 1 s",
        f"failed {web.url('/huge')}: too large (over the 1 MB limit): 1.5 MB",
        f"failed {web.url('/report.pdf')}: not a web page (application/pdf)",
        f"failed {web.url('/loop')}: redirect loop: {web.url('/loop')} → {web.url('/loop')}",
    ]
    assert stdout.splitlines() == [
        f"feed {good}: 7 entries, 7 new",
        f"added {web.url('/flaky')} → web/127.0.0.1/undated-ferry-terminal.md",
        f"added {web.url('/news/bridge')} → {STORY_FILE}",
        "synced 3 feeds: 2 added, 0 updated, 0 already in the corpus, 7 failed",
    ]
    assert {p: p.read_bytes() for p in before} == before
    assert len(web_files(fetching)) == 2


def test_a_compression_bomb_as_a_feed_or_a_page_is_one_line(web: WebServer, fetching: Path) -> None:
    # 64 KB of zstd that expand to 2 GiB, as a feed and as an entry's page: decoded whole,
    # the sync (and the bot running it on a schedule) ran out of memory.
    zstd = {"Content-Encoding": "zstd"}
    bombed = web.route(
        "/bomb.xml", Reply(body=zstd_bomb(2048), content_type=RSS_TYPE, headers=zstd)
    )
    web.route("/news/bomb", Reply(body=zstd_bomb(2048), headers=zstd))
    web.page("/news/bridge", STORY)
    good = feed(web, "/rss.xml", rss(item("/news/bomb", "Bomb"), item("/news/bridge", "Bridge")))
    (fetching / "feeds.yaml").write_text(f"- url: {bombed}\n- url: {good}\n", encoding="utf-8")

    result = newsbot_in_little_memory("sync", "--no-index")

    too_large = "too large (over the 1 MB limit): stopped reading"
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"failed feed {bombed}: {too_large}",
        f"failed {web.url('/news/bomb')}: {too_large}",
    ]
    assert list(web_files(fetching)) == [STORY_FILE]


def test_a_failed_feed_keeps_its_conditional_state(web: WebServer, fetching: Path) -> None:
    courier = feed(web, "/rss.xml", rss(), etag=ETAG)
    follow(courier)
    cli("sync")
    web.route("/rss.xml", Reply(404), Reply(body=rss(), content_type=RSS_TYPE, etag=ETAG))
    assert cli("sync")[0] == 1  # the 404

    code, stdout, _ = cli("sync")

    assert code == 0 and f"feed {courier}: not modified" in stdout
    assert web.last("/rss.xml").headers.get("if-none-match") == ETAG


# --- a second sync: nothing new, nothing fetched -------------------------------------------


def test_a_second_sync_with_nothing_new_fetches_no_page(web: WebServer, fetching: Path) -> None:
    web.page("/news/bridge", STORY)
    courier = feed(
        web, "/rss.xml", rss(item("/news/bridge", "B")), etag=ETAG, last_modified=LAST_MODIFIED
    )
    follow(courier)
    assert cli("sync", "--no-index")[0] == 0
    files = web_files(fetching)
    requests = len(web.requests)

    code, stdout, stderr = cli("sync", "--no-index")

    assert code == 0, stderr
    assert stdout.splitlines() == [
        f"feed {courier}: not modified",
        "synced 1 feed: 0 added, 0 updated, 0 already in the corpus",
    ]
    assert len(web.requests) == requests + 1  # the feed, answered 304
    sent = web.last("/rss.xml").headers
    assert (sent.get("if-none-match"), sent.get("if-modified-since")) == (ETAG, LAST_MODIFIED)
    assert web_files(fetching) == files


def test_a_feed_without_validators_fetches_only_entries_not_in_the_corpus(
    web: WebServer, fetching: Path
) -> None:
    web.page("/news/bridge", STORY)
    web.page("/news/ferry", page("Ferry terminal to open in June", LONG, LONG))
    courier = feed(web, "/rss.xml", rss(item("/news/bridge", "B")))
    follow(courier)
    cli("sync", "--no-index")
    feed(web, "/rss.xml", rss(item("/news/ferry", "F"), item("/news/bridge?utm_source=rss", "B")))

    code, stdout, _ = cli("sync", "--no-index")

    assert code == 0
    assert web.hits("/news/bridge") == 1 and web.hits("/news/ferry") == 1
    assert stdout.splitlines()[-1] == "synced 1 feed: 1 added, 0 updated, 1 already in the corpus"


# --- indexed, and answered from ---------------------------------------------------------------


def test_after_feeds_add_and_sync_ask_answers_citing_outlet_date_and_url(
    web: WebServer, fetching: Path, env: Path
) -> None:
    url = web.page("/news/bridge", STORY)
    follow(feed(web, "/rss.xml", rss(item("/news/bridge", "B")), etag=ETAG))

    code, stdout, stderr = cli("sync")

    assert code == 0, stderr
    assert "│     4 │" in stdout  # the 3 articles there, and this one
    result = runner.invoke(
        app,
        ["ask", "How much did the Springfield city council vote to spend on the bridge?", "--json"],
    )
    answer = json.loads(result.stdout)
    assert answer["found"] is True and "$3.2 million" in answer["answer"]
    cited = answer["citations"][0]
    assert (cited["source"], cited["published"], cited["url"], cited["article_id"]) == (
        "The Springfield Courier",
        "2024-11-17",
        url,
        STORY_FILE,
    )
    code, stdout, _ = cli("sync")
    assert code == 0
    assert "0 added" in stdout and "│" not in stdout  # nothing new: nothing indexed again
    assert stdout.splitlines()[-1] == "index up to date: 4 chunks"


def test_one_story_under_three_outlets_is_one_source(
    web: WebServer, fetching: Path, env: Path
) -> None:
    items = []
    for n, (_, outlet, _, day, title, text) in enumerate(COPIES):
        paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
        html = (
            f'<html><head><title>{title}</title><meta property="og:site_name" '
            f'content="{outlet}"><meta property="article:published_time" content="{day}">'
            f"</head><body><article><h1>{title}</h1>{paragraphs}</article></body></html>"
        )
        web.page(f"/outlet{n}/story", html)
        items.append(item(f"/outlet{n}/story", title))
    follow(feed(web, "/rss.xml", rss(*items)))

    code, stdout, stderr = cli("sync")

    assert code == 0, stderr
    assert "syndicated copies (of 1 stories" in stdout
    data = json.loads(runner.invoke(app, ["ask", "--json", QUESTION]).stdout)
    copies = [c for c in data["citations"] if c["url"] and "/outlet" in c["url"]]
    assert len(copies) == 1
    assert len(copies[0]["also_reported_by"]) == 2


# --- discovering a site's feeds ---------------------------------------------------------------


def test_discover_finds_the_feeds_a_site_names(web: WebServer, fetching: Path) -> None:
    feed(web, "/news/rss.xml", rss(item("/a", "A"), title="Courier"))
    home = web.page(
        "/news/",
        '<html><head><link rel="alternate" type="application/rss+xml" href="rss.xml">'
        '<link rel="alternate" type="application/rss+xml" href="/missing.xml">'
        "</head><body><p>Welcome</p></body></html>",
    )

    code, stdout, stderr = cli("feeds", "discover", home)

    assert code == 0, stderr
    assert stdout == f"{web.url('/news/rss.xml')} (Courier, 1 entry)\n"


def test_discover_says_so_when_a_site_has_no_feed(web: WebServer, fetching: Path) -> None:
    home = web.page("/", "<html><body><p>Welcome</p></body></html>")

    code, _, stderr = cli("feeds", "discover", home)

    assert code == 1
    assert stderr == f"error: {home}: no feed found on the page\n"


def test_help_says_what_the_commands_do() -> None:
    assert "Poll every feed" in cli("sync", "--help")[1]
    for command in ("add", "list", "remove", "discover"):
        assert cli("feeds", command, "--help")[0] == 0
    assert "discover" in cli("feeds", "--help")[1]


# --- retention: NEWSBOT_MAX_AGE_DAYS -----------------------------------------------------------


def test_retention_prunes_old_fetched_articles_files_and_index_alike(
    web: WebServer, fetching: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = write_article(
        fetching,
        "web/example.com/2020-01-02-old-flood.md",
        "The river flooded the old town of Passau on Monday, the mayor said.",
        title="Old flood",
        url="https://example.com/old-flood",
        published="2020-01-02",
        fetched="2020-01-03T07:00:00Z",
    )
    undated = write_article(
        fetching,
        "web/example.com/undated-old-fair.md",
        "The county fair opened on Saturday with a record number of stalls.",
        title="Fair",
        url="https://example.com/fair",
        fetched="2020-05-01T07:00:00Z",  # no date of its own: as old as its fetching
    )
    hand = write_article(  # written by hand, under web/ even: never pruned
        fetching,
        "web/example.com/notes.md",
        "Our own notes on the 2020 flood in Passau.",
        title="Notes",
        published="2020-01-02",
    )
    assert cli("index")[0] == 0
    web.page("/news/bridge", STORY)  # dated 2024-11-17 by its metadata
    web.page("/news/new", page("Ferry terminal to open in June", LONG, LONG))
    web.page("/news/old", page("Harbour fees to rise", LONG, LONG))
    recent = datetime.now(UTC).strftime("%a, %d %b %Y 08:00:00 GMT")
    follow(
        feed(
            web,
            "/rss.xml",
            rss(
                item("/news/bridge", "Bridge"),
                item("/news/new", "Ferry", date=recent),
                item("/news/old", "Fees", date="Wed, 01 Jan 2020 08:00:00 GMT"),
            ),
        )
    )
    monkeypatch.setenv("NEWSBOT_MAX_AGE_DAYS", "30")

    code, stdout, stderr = cli("sync")

    assert code == 0, stderr
    lines = stdout.splitlines()
    assert (
        f"skipped {web.url('/news/old')}: published 2020-01-01, older than "
        "NEWSBOT_MAX_AGE_DAYS (30 days)" in lines
    )
    assert (
        f"skipped {web.url('/news/bridge')}: published 2024-11-17, older than "
        "NEWSBOT_MAX_AGE_DAYS (30 days)" in lines
    )
    assert (
        "pruned web/example.com/2020-01-02-old-flood.md: published 2020-01-02, older than "
        "NEWSBOT_MAX_AGE_DAYS" in lines
    )
    assert web.hits("/news/old") == 0  # its entry's date said enough
    assert not old.exists() and not undated.exists() and hand.exists()
    assert sorted(web_files(fetching)) == [
        f"web/127.0.0.1/{datetime.now(UTC):%Y-%m-%d}-ferry-terminal-to-open-in-june.md",
        "web/example.com/notes.md",
    ]
    catalog = live_catalog(Settings(corpus_dir=fetching, index_dir=env))
    try:
        indexed = set(catalog.hashes())
    finally:
        catalog.close()
    assert indexed == {a.id for a in scan_corpus(fetching).articles}
    assert "web/example.com/notes.md" in indexed
    assert not {str(old.relative_to(fetching)), str(undated.relative_to(fetching))} & indexed


def test_without_a_max_age_nothing_is_pruned(web: WebServer, fetching: Path) -> None:
    old = write_article(
        fetching,
        "web/example.com/2020-01-02-old-flood.md",
        "The river flooded.",
        url="https://example.com/old-flood",
        published="2020-01-02",
        fetched="2020-01-03T07:00:00Z",
    )
    follow(feed(web, "/rss.xml", rss()))

    assert cli("sync", "--no-index")[0] == 0
    assert old.exists()


def test_a_sync_that_only_prunes_drops_the_article_from_the_index(
    web: WebServer, fetching: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = write_article(
        fetching,
        "web/example.com/2020-01-02-old-flood.md",
        "The river flooded the old town of Passau on Monday, the mayor said.",
        url="https://example.com/old-flood",
        published="2020-01-02",
        fetched="2020-01-03T07:00:00Z",
    )
    assert cli("index")[0] == 0
    follow(feed(web, "/rss.xml", rss()))
    monkeypatch.setenv("NEWSBOT_MAX_AGE_DAYS", "30")

    code, stdout, stderr = cli("sync")

    assert code == 0, stderr
    assert "1 pruned" in stdout and not old.exists()
    catalog = live_catalog(Settings(corpus_dir=fetching, index_dir=env))
    try:
        assert str(old.relative_to(fetching)) not in catalog.hashes()
    finally:
        catalog.close()

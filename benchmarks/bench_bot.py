"""The bot under a burst: concurrent `/ask` through the real discord.py client and a fake Discord.

Measures, per interaction, the time from the gateway event to the bot's acknowledgement (Discord
allows 3 s) and to its answer, and the worst stall of the bot's event loop meanwhile. The fake
Discord (tests/fake_discord.py) runs in a process of its own; the answers use the real model.

Run from the repository root:

    python benchmarks/bench_bot.py                  # 100 questions, the seed corpus
    python benchmarks/bench_bot.py --count 200 --articles ../shared/eval/rtqa-dev/articles.jsonl.gz
    python benchmarks/bench_bot.py --sync 20        # and a scheduled feed sync meanwhile

With `--sync N`, the bot's scheduled sync (FEEDS_SYNC_MINUTES) starts with the burst: a feed
of N new articles, each page served (by tests/web_server.py, on 127.0.0.1) after a delay, is
fetched, written and indexed with the real model while the questions are answered.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from bench_ask import BUILTIN_QUESTIONS, percentile
from bench_index import (
    REPO,
    SEED_CORPUS,
    bench_settings,
    load_model,
    machine_line,
    read_records,
    write_corpus,
)

sys.path.insert(0, str(REPO))  # for tests.fake_discord, which is not an installed package

from bot.app import NewsbotBot, serve
from bot.feedback import FeedbackLog
from bot.settings import BotSettings
from index.build.reindex import reindex
from index.build.schedule import Synced, SyncSchedule
from index.ingest.web.feedlist import Feed, FeedList
from index.ingest.web.folder import Saved
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot
from index.settings import Settings
from tests.fake_discord import APP_ID, TOKEN, FakeDiscord, patched, until_ready
from tests.web_server import Reply, WebServer

PAGE_DELAY = 0.5  # seconds each synced page takes to arrive: the sync lasts a while

STALL_TICK = 0.005  # the monitor asks to wake every 5 ms; lateness beyond that is a stall


async def monitor(stalls: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """Record (when, how late) the event loop wakes a sleeper."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(STALL_TICK)
        now = time.perf_counter()
        stalls.append((now, now - before - STALL_TICK))


def fake_discord_process(conn: Connection, count: int) -> None:
    """The fake Discord, in its own process so its work does not take the bot's GIL.

    Protocol over `conn`: sends its port; on "warm" asks one question and waits for the
    answer; on "burst" sends `count` /ask at once, waits for every answer and sends back the
    timings; on "stop" shuts down.
    """

    async def main() -> None:
        fake = FakeDiscord()
        await fake.start()
        conn.send(fake.port)
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
            n = count if command == "burst" else 1
            payloads = [
                fake.slash_ask(BUILTIN_QUESTIONS[i % len(BUILTIN_QUESTIONS)], user_id=10**17 + i)
                for i in range(n)
            ]
            start = len(fake.requests)
            sent: dict[str, float] = {}
            for data in payloads:
                sent[data["id"]] = time.perf_counter()
                await fake.dispatch("INTERACTION_CREATE", data)
            answers = {f"/webhooks/{APP_ID}/{d['token']}": d["id"] for d in payloads}
            while sum(1 for r in fake.requests[start:] if r.path in answers) < n:
                await asyncio.sleep(0.05)
            new = fake.requests[start:]
            acks = {r.path.split("/")[2]: r.at for r in new if r.path.endswith("/callback")}
            done = {answers[r.path]: r.at for r in new if r.path in answers}
            conn.send({i: (t, acks[i], done[i]) for i, t in sent.items()})
        await fake.stop()

    asyncio.run(main())


async def burst(bot: NewsbotBot, conn: Connection) -> dict[str, list[float]]:
    """One warm-up question, then the burst; per-question latencies and loop lags (s)."""
    await until_ready(bot)
    loop = asyncio.get_running_loop()
    # The figures are for a bot that has been up a while, not for its very first question.
    conn.send("warm")
    await loop.run_in_executor(None, conn.recv)
    stalls: list[tuple[float, float]] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(monitor(stalls, stop))
    began = time.perf_counter()
    conn.send("burst")
    timings: dict[str, tuple[float, float, float]] = await loop.run_in_executor(None, conn.recv)
    ended = time.perf_counter()
    stop.set()
    await watcher
    last_ack = max(ack for _, ack, _ in timings.values())
    return {
        "ack": [ack - sent for sent, ack, _ in timings.values()],
        "answer": [done - sent for sent, _, done in timings.values()],
        # Receiving: until the last acknowledgement; answering: the model at work off the loop.
        "stall while receiving": [lag for at, lag in stalls if at <= last_ack],
        "stall while answering": [lag for at, lag in stalls if at > last_ack],
        "burst": [began, ended],
    }


def feed_of_new_articles(web: WebServer, settings: Settings, count: int) -> None:
    """A feed in the corpus's list whose `count` entries are pages not in the corpus."""
    items = []
    for n in range(count):
        body = " ".join(
            f"Paragraph {p} of bulletin {n}: the harbour authority of Port Example reported "
            f"{n * 7 + p} ferry crossings and a new timetable for the winter season."
            for p in range(8)
        )
        html = (
            f"<html><head><title>Harbour bulletin {n}</title>"
            '<meta property="article:published_time" content="2024-11-17">'
            f"</head><body><article><h1>Harbour bulletin {n}</h1><p>{body}</p>"
            "</article></body></html>"
        )
        web.page(f"/bulletin/{n}", html, delay=PAGE_DELAY)
        items.append(f"<item><title>Bulletin {n}</title><link>/bulletin/{n}</link></item>")
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour</title>'
        + "".join(items)
        + "</channel></rss>"
    )
    feed = web.route("/rss.xml", Reply(body=rss, content_type="application/rss+xml"))
    FeedList(settings.corpus_dir).add(Feed(feed))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="concurrent /ask (default 100)")
    parser.add_argument("--articles", type=Path, default=SEED_CORPUS, help="corpus to index")
    parser.add_argument("--limit", type=int, default=100, help="articles to index (default 100)")
    parser.add_argument(
        "--sync",
        type=int,
        default=0,
        metavar="N",
        help="also run the bot's scheduled feed sync during the burst: N new articles",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-bot-") as tmp:
        corpus = write_corpus(read_records(args.articles, args.limit), Path(tmp) / "corpus")
        settings = bench_settings(corpus, Path(tmp) / "index", kind=BotSettings, bot_rate_limit=0)
        embedder = load_embedder(settings)
        load_model(embedder)
        report = reindex(settings, embedder)
        web = WebServer().start()
        schedule: SyncSchedule | None = None
        runs: list[Synced] = []
        if args.sync:
            settings = settings.overridden(fetch_allow_private=["127.0.0.1"])
            feed_of_new_articles(web, settings, args.sync)
            # Started with the bot, as FEEDS_SYNC_MINUTES does; indexes with the same model.
            synced_at: list[float] = []

            def done(run: Synced) -> None:
                synced_at.append(time.perf_counter())
                runs.append(run)

            schedule = SyncSchedule(settings, embedder, minutes=60, on_done=done)
        query = load_embedder(settings, purpose="query")
        query.warm_up()
        newsbot = Newsbot(settings, query)
        feedback = FeedbackLog(settings.index_dir)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        process = multiprocessing.get_context("spawn").Process(
            target=fake_discord_process, args=(theirs, args.count), daemon=True
        )
        process.start()
        fake = FakeDiscord()
        fake.port = ours.recv()

        started: list[float] = []

        async def run() -> dict[str, list[float]]:
            bot = NewsbotBot(settings, newsbot, feedback, schedule=schedule)
            started.append(time.perf_counter())
            server = asyncio.create_task(serve(bot, TOKEN))
            try:
                return await burst(bot, ours)
            finally:
                await bot.close()
                await server

        try:
            with patched(fake):
                figures = asyncio.run(run())
        finally:
            ours.send("stop")
            process.join(timeout=30)
        newsbot.close()
        feedback.close()
        web.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(machine_line())
    print(
        f"index: {report.chunks_total} chunks; {args.count} concurrent /ask from {args.count} users"
    )
    for name in ("ack", "answer"):
        values = [v * 1000 for v in figures[name]]
        print(
            f"time to {name:<6}  p50 {percentile(values, 50):8.1f} ms   "
            f"p95 {percentile(values, 95):8.1f} ms   max {max(values):8.1f} ms"
        )
    for name in ("stall while receiving", "stall while answering"):
        stalls = [v * 1000 for v in figures[name]] or [0.0]
        print(
            f"event-loop {name}: worst {max(stalls):6.1f} ms, p99 {percentile(stalls, 99):5.1f} ms"
            f" ({len(figures[name])} samples, a {STALL_TICK * 1000:.0f} ms sleep each)"
        )
    print(f"peak RSS {rss_before:.0f} MB before the burst, {rss_after:.0f} MB after")
    if args.sync:
        begin, end = (t - started[0] for t in figures["burst"])
        if not runs:
            print(
                f"scheduled sync: running from the bot's start through the whole burst "
                f"({begin:.1f} to {end:.1f} s), {args.sync} pages at "
                f"{PAGE_DELAY * 1000:.0f} ms each"
            )
        else:
            first = runs[0]
            chunks = first.index.chunks_embedded if first.index else 0
            added = first.sync.count(Saved.ADDED)
            print(
                f"scheduled sync: {added} articles added ({PAGE_DELAY * 1000:.0f} ms a page), "
                f"{chunks} chunks embedded, from the bot's start to "
                f"{synced_at[0] - started[0]:.1f} s; the burst from {begin:.1f} to {end:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

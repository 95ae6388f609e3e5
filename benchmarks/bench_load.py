"""The bot under a minute of load: many users, `/ask` and @mentions, some over the rate limit.

`--count` questions (200) arrive at random moments over `--seconds` (60) from `--users` users
(40), through the real discord.py client and the fake Discord of tests/fake_discord.py (in a
process of its own), answered with the real model. `--greedy` of the users (4) ask three times
`BOT_RATE_LIMIT` each; the rest share the remaining questions. Then the same round again
(`--rounds`, 2 in all), from new user ids, to see whether memory grows.

Prints how many questions were answered, politely rate-limited (with the note) and unanswered
or errored (should be 0); time to acknowledge ("thinking…" or "typing…") and to answer,
p50/p95/max; the event loop's worst stall and how many stalls exceeded 100 ms; the bot
process's current RSS (VmRSS) before the first round and after each. Exits with status 1 if
any question went unanswered or errored.

Run from the repository root:

    python benchmarks/bench_load.py                  # 200 questions over 60 s, twice
    python benchmarks/bench_load.py --seconds 10     # the same questions, compressed
    python benchmarks/bench_load.py --tracemalloc    # also the top allocation growth (slow)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import random
import sys
import tempfile
import time
import tracemalloc
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench_ask import BUILTIN_QUESTIONS, default_questions, percentile, read_questions
from bench_bot import STALL_TICK
from bench_index import (
    REPO,
    bench_settings,
    default_articles,
    load_model,
    machine_line,
    read_records,
    write_corpus,
)

sys.path.insert(0, str(REPO))  # for tests.fake_discord, which is not an installed package

from bot.app import NewsbotBot, serve
from bot.feedback import FeedbackLog
from bot.ratelimit import RateLimiter
from bot.settings import BotSettings
from index.build.reindex import reindex
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot
from tests.fake_discord import APP_ID, BOT_ID, BOT_USER, TOKEN, FakeDiscord, patched, until_ready

STALL_LIMIT = 0.100  # a stall longer than this is counted
GRACE_SECONDS = 60.0  # after the last question, how long answers may still take
RATE_LIMITED = "questions a minute"  # in the note a rate-limited user gets
FIRST_USER = 10**17
FIRST_CHANNEL = 700000000000000000  # one channel per @mention: its "typing…" is its acknowledgement


@dataclass(frozen=True)
class Ask:
    """One question: when (s into the round), how, from whom, what, in which channel."""

    at: float
    how: str  # "/ask" or "@mention"
    user: int  # an index; each round adds its own offset to make a user id
    question: str
    channel: int


@dataclass(frozen=True)
class Outcome:
    """What one question got: answered, limited, error or none; seconds to ack and to the reply."""

    how: str
    kind: str
    ack: float | None
    done: float | None


def plan(
    count: int, seconds: float, users: int, greedy: int, limit: int, questions: Sequence[str]
) -> list[Ask]:
    """`count` questions at random moments; the `greedy` first users ask 3 x `limit` each."""
    rng = random.Random(1)
    greedy_asks = min(count, greedy * 3 * max(limit, 1))
    who = [u % greedy for u in range(greedy_asks)]
    who += [greedy + u % max(users - greedy, 1) for u in range(count - greedy_asks)]
    moments = sorted(rng.uniform(0, seconds) for _ in who)
    rng.shuffle(who)
    return [
        Ask(at, rng.choice(("/ask", "@mention")), user, questions[i % len(questions)], i)
        for i, (at, user) in enumerate(zip(moments, who, strict=True))
    ]


def expected_limited(asks: Sequence[Ask], limit: int) -> int:
    """How many questions the rate limiter should refuse if they arrived exactly on time."""
    now = 0.0
    limiter = RateLimiter(limit, clock=lambda: now)
    refused = 0
    for ask in asks:
        now = ask.at
        refused += limiter.try_acquire(ask.user) > 0
    return refused


def fake_discord_process(conn: Connection, channels: int) -> None:
    """The fake Discord, in its own process so that its work does not take the bot's GIL.

    Protocol over `conn`: sends its port; on ("round", asks, user offset) sends every question
    at its moment, waits for the replies and sends back the outcomes; on "stop" shuts down.
    """

    async def main() -> None:
        fake = FakeDiscord(extra_channels=[FIRST_CHANNEL + i for i in range(channels)])
        await fake.start()
        conn.send(fake.port)
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
            _, asks, offset = command
            conn.send(await play(fake, asks, offset))
        await fake.stop()

    asyncio.run(main())


async def play(fake: FakeDiscord, asks: Sequence[Ask], offset: int) -> list[Outcome]:
    """Send `asks` on time; what each got back."""
    start = len(fake.requests)
    began = time.perf_counter()
    sent: list[tuple[Ask, dict[str, Any], float]] = []
    for ask in asks:
        await asyncio.sleep(max(0.0, began + ask.at - time.perf_counter()))
        user_id = FIRST_USER + offset + ask.user
        if ask.how == "/ask":
            data = fake.slash_ask(ask.question, user_id=user_id)
            event = "INTERACTION_CREATE"
        else:
            data = fake.message(
                f"<@{BOT_ID}> {ask.question}",
                channel_id=FIRST_CHANNEL + ask.channel,
                author_id=user_id,
                mentions=[BOT_USER],
            )
            event = "MESSAGE_CREATE"
        sent.append((ask, data, time.perf_counter()))
        await fake.dispatch(event, data)
    deadline = time.perf_counter() + GRACE_SECONDS
    while True:
        outcomes = [outcome(fake, start, *s) for s in sent]
        if all(o.kind != "none" for o in outcomes) or time.perf_counter() > deadline:
            return outcomes
        await asyncio.sleep(0.05)


def outcome(fake: FakeDiscord, start: int, ask: Ask, data: dict[str, Any], at: float) -> Outcome:
    """What the bot did about one question, from the requests it made since `start`."""
    ack = reply = None
    for r in fake.requests[start:]:
        if ask.how == "/ask":
            if r.path == f"/interactions/{data['id']}/{data['token']}/callback":
                ack = r
                reply = r if r.body["type"] == 4 else reply
            elif r.method == "POST" and r.path == f"/webhooks/{APP_ID}/{data['token']}":
                reply = r
        elif r.path == f"/channels/{data['channel_id']}/typing":
            ack = ack or r
        elif (
            r.method == "POST"
            and r.path == f"/channels/{data['channel_id']}/messages"
            and str((r.body.get("message_reference") or {}).get("message_id")) == data["id"]
        ):
            reply = r
    if reply is None:
        return Outcome(ask.how, "none", None, None)
    message = reply.body.get("data", reply.body) if reply.path.endswith("/callback") else reply.body
    if message.get("embeds"):
        kind = "answered"
    elif RATE_LIMITED in (message.get("content") or ""):
        kind = "limited"
    else:
        kind = "error"
    ack = ack or reply
    return Outcome(ask.how, kind, ack.at - at, reply.at - at)


@dataclass
class Stalls:
    """How late the event loop woke a 5 ms sleeper each time (s), and whether its thread was
    running code meanwhile (ours or discord.py's) rather than waiting for the GIL or a core.

    Arrays, not objects: the bot process's memory is measured, and 11,000 samples a minute
    as objects would grow it by a megabyte a round.
    """

    lags: array[float] = field(default_factory=lambda: array("d"))
    busy: array[int] = field(default_factory=lambda: array("b"))


async def monitor(stalls: Stalls, stop: asyncio.Event) -> None:
    """Record every wake-up of a sleeper on the event loop."""
    while not stop.is_set():
        before, cpu = time.perf_counter(), time.thread_time()
        await asyncio.sleep(STALL_TICK)
        lag = time.perf_counter() - before - STALL_TICK
        stalls.lags.append(lag)
        stalls.busy.append(time.thread_time() - cpu > lag / 2)


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), not its peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Round:
    outcomes: list[Outcome]
    stalls: Stalls
    rss_after: float
    snapshot: tracemalloc.Snapshot | None


async def rounds(
    bot: NewsbotBot, conn: Connection, asks: list[Ask], users: int, count: int
) -> tuple[float, list[Round]]:
    """One warm-up question, then `count` rounds of `asks`; RSS before, each round's figures."""
    await until_ready(bot)
    loop = asyncio.get_running_loop()
    conn.send(("round", [Ask(0.0, "/ask", 0, asks[0].question, 0)], 10 * users))
    await loop.run_in_executor(None, conn.recv)
    gc.collect()
    before = rss_mb()
    done = []
    for n in range(count):  # new user ids: a round is not rate-limited by the one before
        stalls = Stalls()
        stop = asyncio.Event()
        watcher = asyncio.create_task(monitor(stalls, stop))
        conn.send(("round", asks, n * users))
        outcomes = await loop.run_in_executor(None, conn.recv)
        stop.set()
        await watcher
        await asyncio.sleep(1.0)  # the last feedback writes
        gc.collect()  # what the round left behind, not garbage waiting for a collection
        wanted = tracemalloc.is_tracing() and n in (0, count - 1)  # snapshots are big
        snapshot = tracemalloc.take_snapshot() if wanted else None
        done.append(Round(outcomes, stalls, rss_mb(), snapshot))
    return before, done


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="questions a round (200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="spread over (60 s)")
    parser.add_argument("--users", type=int, default=40, help="users asking (40)")
    parser.add_argument("--greedy", type=int, default=4, help="users over the limit (4)")
    parser.add_argument("--rate-limit", type=int, default=None, help="BOT_RATE_LIMIT (5)")
    parser.add_argument("--articles", type=Path, default=default_articles(), help="to index")
    parser.add_argument("--limit", type=int, default=100, help="articles to index (100)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (2)")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="top allocation growth (slows everything)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    questions, sources = read_questions(default_questions(), 0)
    questions = questions or BUILTIN_QUESTIONS
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-load-") as tmp:
        corpus = write_corpus(
            read_records(args.articles, args.limit, prefer_ids=sources), Path(tmp) / "corpus"
        )
        limits = {} if args.rate_limit is None else {"bot_rate_limit": args.rate_limit}
        settings = bench_settings(corpus, Path(tmp) / "index", kind=BotSettings, **limits)
        embedder = load_embedder(settings)
        load_model(embedder)
        report = reindex(settings, embedder)
        del embedder
        query = load_embedder(settings, purpose="query")
        query.warm_up()
        newsbot = Newsbot(settings, query)
        feedback = FeedbackLog(settings.index_dir)
        asks = plan(
            args.count, args.seconds, args.users, args.greedy, settings.bot_rate_limit, questions
        )

        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        process = multiprocessing.get_context("spawn").Process(
            target=fake_discord_process, args=(theirs, len(asks)), daemon=True
        )
        process.start()
        fake = FakeDiscord()
        fake.port = ours.recv()
        if args.tracemalloc:
            tracemalloc.start(10)

        async def run() -> tuple[float, list[Round]]:
            bot = NewsbotBot(settings, newsbot, feedback)
            server = asyncio.create_task(serve(bot, TOKEN))
            try:
                return await rounds(bot, ours, asks, args.users, max(args.rounds, 1))
            finally:
                await bot.close()
                await server

        try:
            with patched(fake):
                rss_before, results = asyncio.run(run())
        finally:
            ours.send("stop")
            process.join(timeout=30)
        newsbot.close()
        feedback.close()

    print(machine_line())
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    mentions = sum(a.how == "@mention" for a in asks)
    per_user = Counter(a.user for a in asks)
    print(
        f"index: {report.chunks_total} chunks; a round: {len(asks)} questions over "
        f"{args.seconds:g} s ({len(asks) - mentions} /ask, {mentions} @mention) from "
        f"{len(per_user)} users, {args.greedy} of them asking {max(per_user.values())}; "
        f"BOT_RATE_LIMIT {settings.bot_rate_limit}, so "
        f"{expected_limited(asks, settings.bot_rate_limit)} should be rate-limited"
    )
    for n, result in enumerate(results, 1):
        kinds = Counter(o.kind for o in result.outcomes)
        print(
            f"round {n}: answered {kinds['answered']}, rate-limited (with the note) "
            f"{kinds['limited']}, errored {kinds['error']}, unanswered {kinds['none']}"
        )
        acks = [o.ack * 1000 for o in result.outcomes if o.ack is not None]
        answers = [o.done * 1000 for o in result.outcomes if o.kind == "answered" and o.done]
        for name, values in (("acknowledge", acks), ("answer", answers)):
            print(
                f"  time to {name:<11}  p50 {percentile(values, 50):7.1f} ms   "
                f"p95 {percentile(values, 95):7.1f} ms   max {max(values, default=0):7.1f} ms"
            )
        lags = [lag * 1000 for lag in result.stalls.lags] or [0.0]
        worst = max(range(len(lags)), key=lags.__getitem__)
        over = [i for i, lag in enumerate(lags) if lag > STALL_LIMIT * 1000]
        why = "running code" if result.stalls.busy[worst] else "waiting for the GIL or a core"
        print(
            f"  event-loop stall: worst {lags[worst]:.1f} ms (the loop {why}), "
            f"p99 {percentile(lags, 99):.1f} ms, {len(over)} over {STALL_LIMIT * 1000:.0f} ms, "
            f"{sum(result.stalls.busy[i] for i in over)} of them with the loop running code "
            f"({len(lags)} samples, a {STALL_TICK * 1000:.0f} ms sleep each)"
        )
    after = ", ".join(f"{r.rss_after:.0f}" for r in results)
    print(
        f"RSS (VmRSS, current): {rss_before:.0f} MB before; after each round {after} MB "
        f"({results[-1].rss_after - results[0].rss_after:+.1f} MB from round 1 to {len(results)})"
    )
    first, last = results[0].snapshot, results[-1].snapshot
    if first is not None and last is not None:
        print(f"tracemalloc, top growth from round 1 to {len(results)}:")
        for stat in last.compare_to(first, "lineno")[:8]:
            print(f"  {stat}")
    lost = sum(o.kind in ("error", "none") for r in results for o in r.outcomes)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())

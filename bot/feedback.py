"""The feedback log: answers the bot gave and the 👍/👎 votes on them (SQLite beside the index)."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from index.answer.types import Answer
from index.store.catalog import read_only_connection

log = logging.getLogger("newsbot.feedback")

FEEDBACK_FILE = "feedback.sqlite"
# SQLite's primary result codes for a file it may not or cannot write.
CANNOT_WRITE = {
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
}
T = TypeVar("T")
Vote = Literal["up", "down"]
VOTES: tuple[Vote, ...] = ("up", "down")

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    asked_at TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    channel_id INTEGER,
    message_id INTEGER,
    shown INTEGER NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_message ON answers(message_id);
CREATE TABLE IF NOT EXISTS votes (
    answer_id TEXT NOT NULL REFERENCES answers(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    voted_at TEXT NOT NULL,
    PRIMARY KEY (answer_id, user_id)
);
"""


@dataclass(frozen=True)
class StoredAnswer:
    """An answer as the bot posted it: `shown` citations went in the reply, the rest wait."""

    id: str
    asked_at: str
    user_id: int
    channel_id: int | None
    message_id: int | None
    shown: int
    answer: Answer


@dataclass(frozen=True)
class FeedbackEntry:
    """One vote with what it was about, as `newsbot feedback` lists it."""

    voted_at: str
    vote: Vote
    user_id: int
    question: str
    answer: str
    found: bool
    sources: list[dict[str, Any]]  # the citations the reply showed
    answer_id: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FeedbackLog:
    """Answers and votes in `index_dir/feedback.sqlite`; safe to share between threads.

    Recording feedback must never stop the bot answering: if the file cannot be written (a
    read-only index folder, a full disk), one warning is logged and answers and votes are
    kept in memory until the process ends (buttons on answers recorded before then say
    they are forgotten).
    """

    def __init__(self, index_dir: Path, *, read_only: bool = False) -> None:
        """Open (or create) the log in `index_dir`; `read_only` opens an existing one only to
        read it, writing nothing (`newsbot feedback`, on an index it may not write)."""
        self.path = index_dir / FEEDBACK_FILE
        self._read_only = read_only
        self._lock = threading.Lock()
        self.in_memory = False
        if read_only:
            self._db = read_only_connection(self.path)
            self._db.row_factory = sqlite3.Row
            return
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
            self._db = _connect(str(self.path))
        except (OSError, sqlite3.Error) as exc:
            self._db = self._to_memory(exc)

    @classmethod
    def existing(cls, index_dir: Path) -> FeedbackLog | None:
        """The log in `index_dir` if the bot ever wrote one, opened to read it."""
        if not (index_dir / FEEDBACK_FILE).exists():
            return None
        return cls(index_dir, read_only=True)

    def _to_memory(self, exc: Exception) -> sqlite3.Connection:
        """An in-memory log instead of the file, which failed with `exc`; or `exc` raised."""
        if self._read_only or self.in_memory or not _cannot_write(exc):
            raise exc
        log.warning(
            "cannot write the feedback log %s (%s): answers and votes are kept in memory "
            "until the bot stops",
            self.path,
            exc,
        )
        self.in_memory = True
        return _connect(":memory:")

    def _writing(self, write: Callable[[sqlite3.Connection], T]) -> T:
        """`write(db)`, done in memory from now on if the file cannot take it."""
        with self._locked() as db:
            try:
                return write(db)
            except (OSError, sqlite3.Error) as exc:
                self._db = self._to_memory(exc)
                db.close()
                return write(self._db)

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._locked() as db:
            db.close()

    def record_answer(
        self, answer: Answer, *, user_id: int, channel_id: int | None, shown: int
    ) -> StoredAnswer:
        """Remember an answer about to be posted; its id goes into the buttons under it."""
        stored = StoredAnswer(
            uuid.uuid4().hex[:16], _now(), user_id, channel_id, None, shown, answer
        )
        row = (
            stored.id,
            stored.asked_at,
            user_id,
            channel_id,
            shown,
            json.dumps(answer.to_dict(), ensure_ascii=False),
        )
        self._writing(
            lambda db: db.execute(
                "INSERT INTO answers(id, asked_at, user_id, channel_id, shown, answer) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        )
        return stored

    def set_message(self, answer_id: str, message_id: int) -> None:
        """Note the Discord message that shows the answer (threads started from it follow up)."""
        self._writing(
            lambda db: db.execute(
                "UPDATE answers SET message_id = ? WHERE id = ?", (message_id, answer_id)
            )
        )

    def answer(self, answer_id: str) -> StoredAnswer | None:
        with self._locked() as db:
            row = db.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
        return None if row is None else _stored(row)

    def answer_for_message(self, message_id: int) -> StoredAnswer | None:
        """The answer shown by Discord message `message_id`, if the bot posted one."""
        with self._locked() as db:
            row = db.execute("SELECT * FROM answers WHERE message_id = ?", (message_id,)).fetchone()
        return None if row is None else _stored(row)

    def vote(self, answer_id: str, *, user_id: int, vote: Vote) -> bool:
        """Record (or change) `user_id`'s vote; False if the answer is unknown."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")

        def record(db: sqlite3.Connection) -> bool:
            known = db.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone()
            if known is None:
                return False
            db.execute(
                "INSERT INTO votes(answer_id, user_id, vote, voted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(answer_id, user_id) DO UPDATE SET "
                "vote = excluded.vote, voted_at = excluded.voted_at",
                (answer_id, user_id, vote, _now()),
            )
            return True

        return self._writing(record)

    def entries(self, *, vote: Vote | None = None, limit: int | None = None) -> list[FeedbackEntry]:
        """Votes, newest first, each with its question, answer and cited sources."""
        query = (
            "SELECT v.vote, v.user_id, v.voted_at, a.id, a.shown, a.answer FROM votes v "
            "JOIN answers a ON a.id = v.answer_id"
        )
        params: list[Any] = []
        if vote is not None:
            query += " WHERE v.vote = ?"
            params.append(vote)
        query += " ORDER BY v.voted_at DESC, v.rowid DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._locked() as db:
            rows = db.execute(query, params).fetchall()
        entries = []
        for row in rows:
            answer = json.loads(row["answer"])
            entries.append(
                FeedbackEntry(
                    voted_at=row["voted_at"],
                    vote=row["vote"],
                    user_id=row["user_id"],
                    question=answer["question"],
                    answer=answer["answer"],
                    found=answer["found"],
                    sources=[
                        {k: c[k] for k in ("n", "title", "source", "published", "url")}
                        for c in answer["citations"][: row["shown"]]
                    ],
                    answer_id=row["id"],
                )
            )
        return entries


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def _cannot_write(exc: Exception) -> bool:
    """Whether `exc` says the log's file cannot be written (rather than a bug)."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in CANNOT_WRITE
    return isinstance(exc, OSError)


def _stored(row: sqlite3.Row) -> StoredAnswer:
    return StoredAnswer(
        id=row["id"],
        asked_at=row["asked_at"],
        user_id=row["user_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        shown=row["shown"],
        answer=Answer.from_dict(json.loads(row["answer"])),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")

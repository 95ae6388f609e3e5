"""A catalog's articles and chunks: what the generation holds, read across its segments,
and written to its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from index.ingest.corpus.article import Article
from index.records import ArticleRecord, Chunk, Passage
from index.store.catalog.schema import Part, article_record, batches, blob, rollback
from index.store.catalog.segments import SegmentTables


class ArticleTables(SegmentTables):
    """Articles (each with its story) and their chunks."""

    def hashes(self) -> dict[str, tuple[str, str]]:
        """Article id → (content hash, source path)."""
        out = {}
        for part in self._parts:
            rows = self._db.execute(
                f"SELECT id, content_hash, path FROM {part.schema}.articles WHERE {part.live('id')}"
            )
            out.update({r[0]: (r[1], r[2]) for r in rows})
        return out

    def chunk_ids(self, article_ids: Iterable[str] | None = None) -> list[str]:
        """Chunk ids of the given articles (all chunks when None), of every segment."""
        out: list[str] = []
        for part in self._parts:
            out.extend(self._chunk_ids(part, article_ids))
        return sorted(out) if article_ids is None else out

    def own_chunk_ids(self) -> list[str]:
        """Chunk ids of this catalog's own segment, sorted."""
        return self._chunk_ids(self._own, None)

    def _chunk_ids(self, part: Part, article_ids: Iterable[str] | None) -> list[str]:
        table = f"{part.schema}.chunks"
        live = part.live("article_id")
        if article_ids is None:
            query = f"SELECT id FROM {table} WHERE {live} ORDER BY id"
            return [r[0] for r in self._db.execute(query)]
        out: list[str] = []
        for batch in batches(list(article_ids), 500):
            marks = ",".join("?" * len(batch))
            out.extend(
                r[0]
                for r in self._db.execute(
                    f"SELECT id FROM {table} WHERE article_id IN ({marks}) AND {live}", batch
                )
            )
        return out

    def replace_articles(
        self,
        articles: Sequence[tuple[Article, Sequence[Chunk], np.ndarray]],
        removed: Sequence[str],
        now: str,
    ) -> None:
        """In one transaction: drop `removed` articles, (re)write the given ones and chunks.

        Each article comes with its chunks and their vectors (one row per chunk). They are
        written to this catalog's own segment; an older segment's version of any of them is
        marked dead.
        """
        db = self._db
        gone = [*removed, *(article.id for article, _, _ in articles)]
        db.execute("BEGIN IMMEDIATE")
        try:
            for part in self._others:
                for batch in batches(gone, 500):
                    marks = ",".join("?" * len(batch))
                    db.execute(
                        "INSERT OR REPLACE INTO main.dead(segment, article_id, n_chunks) "
                        f"SELECT ?, id, n_chunks FROM {part.schema}.articles "
                        f"WHERE id IN ({marks}) AND {part.live('id')}",
                        [part.name, *batch],
                    )
            for batch in batches(list(removed), 500):
                marks = ",".join("?" * len(batch))
                db.execute(f"DELETE FROM main.chunks WHERE article_id IN ({marks})", batch)
                db.execute(f"DELETE FROM main.articles WHERE id IN ({marks})", batch)
            for article, chunks, vectors in articles:
                db.execute("DELETE FROM main.chunks WHERE article_id = ?", (article.id,))
                db.execute(
                    "INSERT OR REPLACE INTO main.articles VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        article.id,
                        article.path,
                        article.content_hash,
                        article.title,
                        article.source,
                        article.url,
                        article.published,
                        article.author,
                        len(chunks),
                        now,
                    ),
                )
                db.executemany(
                    'INSERT INTO main.chunks(id, article_id, ord, start, "end", text, vector) '
                    "VALUES (?,?,?,?,?,?,?)",
                    [
                        (c.id, c.article_id, c.ord, c.start, c.end, c.text, blob(v))
                        for c, v in zip(chunks, vectors, strict=True)
                    ],
                )
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise

    def passages(self, chunk_ids: Sequence[str]) -> dict[str, Passage]:
        """Chunk id → passage (chunk and article), for the ids that exist."""
        out: dict[str, Passage] = {}
        for part in self._parts:
            s = part.schema
            for batch in batches(list(chunk_ids), 500):
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    'SELECT c.id AS cid, c.article_id, c.ord, c.start, c."end", c.text, '
                    f"{self._article_columns(part)} FROM {s}.chunks c "
                    f"JOIN {s}.articles a ON a.id = c.article_id {self._story_join(part)} "
                    f"WHERE c.id IN ({marks}) AND {part.live('c.article_id')}",
                    batch,
                )
                for r in rows:
                    chunk = Chunk(
                        r["cid"], r["article_id"], r["ord"], r["start"], r["end"], r["text"]
                    )
                    out[chunk.id] = Passage(chunk, article_record(r))
        return out

    def _find(self, article_id: str) -> tuple[Part, sqlite3.Row] | None:
        """The segment holding `article_id`, and its row."""
        for part in self._parts:
            row = self._db.execute(
                f"SELECT * FROM {part.schema}.articles WHERE id = ? AND {part.live('id')}",
                (article_id,),
            ).fetchone()
            if row is not None:
                return part, row
        return None

    def pieced_articles(self, article_ids: Iterable[str]) -> list[Article]:
        """The given articles as indexed, each text pieced together from its chunks.

        Chunks cover all of an article's text but the whitespace between some of them
        (the splitter strips it): a one-character gap becomes a space, a longer one line
        breaks, so every chunk sits at its offsets again. For an article whose file can no
        longer be read, this is what is left to chunk anew.
        """
        out: list[Article] = []
        for article_id in article_ids:
            found = self._find(article_id)
            if found is None:
                continue
            part, record = found
            text: list[str] = []
            end = 0
            for chunk in self._db.execute(
                f'SELECT start, "end", text FROM {part.schema}.chunks WHERE article_id = ? '
                "ORDER BY ord",
                (article_id,),
            ):
                start, stop, piece = chunk
                if start > end:
                    gap = start - end
                    text.append(" " if gap == 1 else "\n" * gap)
                if stop > end:
                    text.append(piece[max(end - start, 0) :])
                    end = stop
            if not text:
                continue
            out.append(
                Article(
                    id=record["id"],
                    title=record["title"],
                    text="".join(text),
                    path=record["path"],
                    source=record["source"],
                    url=record["url"],
                    published=record["published"],
                    author=record["author"],
                )
            )
        return out

    def iter_chunk_texts(self) -> Iterator[tuple[str, str, str]]:
        """(chunk id, article title, chunk text) for every chunk of this catalog's own
        segment, in chunk-id order."""
        rows = self._db.execute(
            "SELECT c.id, a.title, c.text FROM main.chunks c "
            "JOIN main.articles a ON a.id = c.article_id ORDER BY c.id"
        )
        for r in rows:
            yield r[0], r[1], r[2]

    def articles(self) -> list[ArticleRecord]:
        out: list[ArticleRecord] = []
        for part in self._parts:
            rows = self._db.execute(
                f"SELECT {self._article_columns(part)} FROM {part.schema}.articles a "
                f"{self._story_join(part)} WHERE {part.live('a.id')}"
            )
            out.extend(article_record(r) for r in rows)
        return sorted(out, key=lambda a: a.id)

    def _records(self, article_ids: Sequence[str]) -> list[ArticleRecord]:
        out: list[ArticleRecord] = []
        for part in self._parts:
            for batch in batches(list(article_ids), 500):
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT {self._article_columns(part)} FROM {part.schema}.articles a "
                    f"{self._story_join(part)} WHERE a.id IN ({marks}) AND {part.live('a.id')}",
                    batch,
                )
                out.extend(article_record(r) for r in rows)
        return sorted(out, key=lambda a: a.id)

    def counts(self) -> tuple[int, int]:
        """(articles, chunks)."""
        articles = chunks = 0
        for part in self._parts:
            articles += self._db.execute(f"SELECT COUNT(*) FROM {part.schema}.articles").fetchone()[
                0
            ]
            chunks += self._db.execute(f"SELECT COUNT(*) FROM {part.schema}.chunks").fetchone()[0]
        if self._segmented:
            row = self._db.execute("SELECT COUNT(*), TOTAL(n_chunks) FROM main.dead").fetchone()
            articles -= int(row[0])
            chunks -= int(row[1])
        return int(articles), int(chunks)

    def _article_columns(self, part: Part) -> str:
        if self.segmented:
            return "a.*, COALESCE(m.story, a.id) AS story"
        return "a.*, s.story" if part.stories else "a.*, NULL AS story"

    def _story_join(self, part: Part) -> str:
        if self.segmented:
            return "LEFT JOIN main.story_map m ON m.article_id = a.id"
        if part.stories:
            return f"LEFT JOIN {part.schema}.stories s ON s.article_id = a.id"
        return ""

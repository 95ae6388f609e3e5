"""A catalog's stories (syndicated copies, `index.build.stories`): each article's signature,
and which story each is a copy in."""

from __future__ import annotations

from collections.abc import Iterable

from index.records import ArticleRecord
from index.store.catalog.articles import ArticleTables
from index.store.catalog.schema import article_record, batches, rollback


class StoryTables(ArticleTables):
    """Story signatures and the story of each article."""

    def copies(self, story_ids: Iterable[str]) -> dict[str, list[ArticleRecord]]:
        """Story id → its articles, for the given stories that have more than one."""
        wanted = sorted(set(story_ids))
        if self.segmented:
            members: set[str] = set()
            for batch in batches(wanted, 500):
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT article_id, story FROM main.story_map WHERE story IN ({marks})",
                    batch,
                )
                for r in rows:
                    members.update((r[0], r[1]))  # a story's id is its first article's
            out: dict[str, list[ArticleRecord]] = {}
            for record in self._records(sorted(members)):
                out.setdefault(record.story_id, []).append(record)
            return {story: found for story, found in out.items() if len(found) > 1}
        if not self._own.stories:
            return {}
        out = {}
        for batch in batches(wanted, 500):
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT a.*, s.story FROM stories s JOIN articles a ON a.id = s.article_id "
                f"WHERE s.story IN ({marks}) ORDER BY a.id",
                batch,
            )
            for r in rows:
                out.setdefault(r["story"], []).append(article_record(r))
        return {story: found for story, found in out.items() if len(found) > 1}

    def signatures(self) -> dict[str, bytes]:
        """Article id → its stored story signature."""
        out: dict[str, bytes] = {}
        for part in self._parts:
            if part.stories:
                rows = self._db.execute(
                    f"SELECT article_id, signature FROM {part.schema}.stories "
                    f"WHERE {part.live('article_id')}"
                )
                out.update({r[0]: r[1] for r in rows})
        return out

    def articles_missing_signatures(self) -> set[str]:
        """Articles without a stored story signature."""
        out: set[str] = set()
        for part in self._parts:
            s = part.schema
            if not part.stories:
                query = f"SELECT a.id FROM {s}.articles a WHERE {part.live('a.id')}"
            else:
                query = (
                    f"SELECT a.id FROM {s}.articles a LEFT JOIN {s}.stories t "
                    f"ON t.article_id = a.id WHERE t.article_id IS NULL AND {part.live('a.id')}"
                )
            out.update(r[0] for r in self._db.execute(query))
        return out

    def story_map(self) -> dict[str, str]:
        """Article id → story id, for the articles that are a copy of another (segmented)."""
        rows = self._db.execute("SELECT article_id, story FROM main.story_map")
        return {r[0]: r[1] for r in rows}

    def set_stories(self, signatures: dict[str, bytes], stories: dict[str, str]) -> None:
        """Store new signatures (article id → signature, for articles of this catalog's own
        segment), then every article's story (article id → story id), in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO main.stories(article_id, signature, story) "
                "VALUES (?, ?, NULL)",
                list(signatures.items()),
            )
            if self.segmented:
                db.execute("DELETE FROM main.story_map")
                db.executemany(
                    "INSERT INTO main.story_map(article_id, story) VALUES (?, ?)",
                    [(aid, story) for aid, story in stories.items() if story != aid],
                )
            else:
                db.executemany(
                    "UPDATE main.stories SET story = ? WHERE article_id = ?",
                    [(story, aid) for aid, story in stories.items()],
                )
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise

    def drop_signatures(self) -> None:
        """Forget every signature of this catalog's own segment (they were made another way)."""
        self._db.execute("DELETE FROM main.stories")

    def copy_count(self) -> tuple[int, int]:
        """(articles that are a copy of another, stories with copies)."""
        if self.segmented:
            row = self._db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT story) FROM main.story_map"
            ).fetchone()
            return int(row[0]), int(row[1])
        if not self._own.stories:
            return 0, 0
        row = self._db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT story) FROM stories WHERE story IN "
            "(SELECT story FROM stories GROUP BY story HAVING COUNT(*) > 1)"
        ).fetchone()
        return int(row[0]) - int(row[1]), int(row[1])

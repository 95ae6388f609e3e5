"""What built a catalog's generation: its `meta` table (settings, identity, segments)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from index.store.catalog.schema import Tables, read_only_connection


class MetaTables(Tables):
    """The build metadata: a JSON value by key."""

    def get_meta(self, key: str) -> Any:
        return _meta_value(self._db, key)

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO main.meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def index_id(self) -> str:
        """This index's identity, made on first use; it marks the vector collection it owns."""
        value = self.get_meta("index_id")
        if value is None:
            value = uuid.uuid4().hex
            self.set_meta("index_id", value)
        return str(value)


def stored_meta(path: Path, key: str) -> Any:
    """The metadata `key` of the catalog at `path`, read without opening its segments (as
    cleaning up reads each generation's); None without it, or if it cannot be read."""
    if not path.exists():
        return None
    try:
        db = read_only_connection(path)
        try:
            return _meta_value(db, key)
        finally:
            db.close()
    except (sqlite3.Error, ValueError):  # not a catalog, or a value that is not JSON
        return None


def _meta_value(db: sqlite3.Connection, key: str) -> Any:
    row = db.execute("SELECT value FROM main.meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])

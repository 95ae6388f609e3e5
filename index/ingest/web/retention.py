"""Retention (NEWSBOT_MAX_AGE_DAYS): fetched articles older than so many days leave the
corpus, and a feed's older entries are not fetched at all.

Only files newsbot wrote are pruned: Markdown under the corpus's `web/` folder whose front
matter has the `fetched` time newsbot records. An article is as old as its `published` date,
else the day it was fetched. Files an admin wrote, anywhere, are never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from index.disk import writing
from index.ingest.corpus.metadata import normalise_date
from index.ingest.web.folder import WebFolder, front_matter, markdown_files


@dataclass(frozen=True)
class Pruned:
    """A fetched article deleted from the corpus for its age."""

    path: Path
    dated: str  # YYYY-MM-DD: when it was published (or fetched)


@dataclass(frozen=True)
class Retention:
    """How long fetched articles are kept.

    Args:
        max_age_days: days kept after publication; None keeps all.
        today: the day ages are counted to.
    """

    max_age_days: int | None
    today: date

    @property
    def cutoff(self) -> str | None:
        """The oldest date kept (YYYY-MM-DD); None if all are kept."""
        if self.max_age_days is None:
            return None
        return (self.today - timedelta(days=self.max_age_days)).isoformat()

    def too_old(self, published: str | None) -> bool:
        """Whether an article published on `published` (YYYY-MM-DD) is past keeping; an
        undated one is not."""
        cutoff = self.cutoff
        return cutoff is not None and published is not None and published < cutoff

    def why(self, published: str) -> str:
        """Why an article published then is not kept, on one line."""
        return f"published {published}, older than NEWSBOT_MAX_AGE_DAYS ({self.max_age_days} days)"

    def prune(self, folder: WebFolder) -> list[Pruned]:
        """Delete the fetched articles under `folder` that are too old.

        Raises:
            DiskWriteError: a file cannot be deleted.
        """
        if self.cutoff is None:
            return []
        pruned = []
        for path in markdown_files(folder.root):
            meta = front_matter(path)
            if not meta.get("fetched"):
                continue  # not written by newsbot
            dated = normalise_date(meta.get("published")) or normalise_date(meta.get("fetched"))
            if self.too_old(dated):
                assert dated is not None
                with writing(path, setting="NEWSBOT_CORPUS_DIR", then="run `newsbot sync` again"):
                    path.unlink(missing_ok=True)
                folder.forget(path)
                pruned.append(Pruned(path, dated))
        return pruned

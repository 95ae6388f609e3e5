"""The damaged segments of the generation in service, found by the reindex that repairs them.

Every byte of each segment is checked against the record made when it was sealed
(`index.store.integrity`). A segment whose catalog is damaged (or gone) is left out: its
articles are read again from the corpus, as new ones. One whose catalog is whole but whose
BM25 or vectors are not is merged into the segment the reindex writes, which builds them
anew from that catalog (no model call). A segment sealed before files were recorded is
checked as well as it can be without a record: its BM25 loads and holds its chunks, its
embedded store's database is there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from index.store.catalog import Catalog, SegmentInfo
from index.store.integrity import Damage, check_files
from index.store.layout import BM25_FOLDER, CATALOG_FILE, CHROMA_FOLDER, SEGMENTS_FOLDER, Generation
from index.store.lexical import LexicalIndex
from index.store.vectors import CHROMA_SQLITE

SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class Repairs:
    """The damaged segments of the generation in service, by what repairs them."""

    # Segment → its damage: the catalog; its articles are read again from the corpus.
    reread: dict[str, str] = field(default_factory=dict)
    # Segment → its damage: BM25 or vectors; rebuilt from its catalog, merged into the new one.
    rebuilt: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.reread or self.rebuilt)

    def lines(self) -> list[str]:
        """What was repaired, a line a segment."""
        return [
            *(
                f"{SEGMENTS_FOLDER}/{name} ({damage}): its articles were read again from the corpus"
                for name, damage in sorted(self.reread.items())
            ),
            *(
                f"{SEGMENTS_FOLDER}/{name} ({damage}): rebuilt from its catalog (no model call)"
                for name, damage in sorted(self.rebuilt.items())
            ),
        ]


def open_checked(live: Generation, *, embedded: bool) -> tuple[Catalog, Repairs]:
    """The catalog of the generation in service `live`, its segments checked byte for byte;
    those whose catalog is damaged left out (`Repairs.reread`), those whose other parts are
    named in `Repairs.rebuilt`. `embedded`: the vectors are in each segment's folder.

    Raises:
        IndexDamagedError: the generation's own catalog cannot be read.
    """
    catalog = Catalog(live.catalog, writable=False, skip_damaged=True)
    repairs = Repairs(reread=dict(catalog.unattached))
    for segment in catalog.segments():
        if segment.folder == live.root:  # a generation from before segments: no record
            continue
        damage = _damage(segment, embedded=embedded)
        if damage is None:
            continue
        if damage.file == CATALOG_FILE:
            repairs.reread[segment.name] = str(damage)
        else:
            repairs.rebuilt[segment.name] = str(damage)
    if set(repairs.reread) - set(catalog.unattached):  # attached, yet not as written
        catalog.close()
        catalog = Catalog(live.catalog, writable=False, skip_damaged=True, skip=repairs.reread)
    return catalog, repairs


def _damage(segment: SegmentInfo, *, embedded: bool) -> Damage | None:
    if segment.files is not None:
        return check_files(segment.folder, segment.files, thorough=True)
    # Sealed before files were recorded: what can be told without a record.
    try:
        lexical = LexicalIndex.load(segment.folder / BM25_FOLDER)
    except Exception as exc:  # whatever bm25s or numpy raise on a broken file
        return Damage(f"{BM25_FOLDER}/", f"cannot be read ({type(exc).__name__}: {exc})")
    if lexical.size != segment.chunks:
        return Damage(
            f"{BM25_FOLDER}/", f"holds {lexical.size:,} chunks, its catalog {segment.chunks:,}"
        )
    if embedded:
        database = segment.folder / CHROMA_FOLDER / CHROMA_SQLITE
        try:
            with open(database, "rb") as handle:
                if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                    return Damage(f"{CHROMA_FOLDER}/{CHROMA_SQLITE}", "is not a database")
        except OSError as exc:
            return Damage(f"{CHROMA_FOLDER}/{CHROMA_SQLITE}", f"cannot be read ({exc.strerror})")
    return None

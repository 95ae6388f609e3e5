"""Store: an index folder on disk. Its layout and generations, the SQLite catalogs, the
Chroma vectors, the BM25 keyword index, what built it, and the writer's lock."""

"""The names the ingest layer gives files: in the corpus folder, and its own records in the
index folder. (The store's names in the index folder are `index.store.layout`'s; the bot's
feedback log is `bot.feedback`'s; the exported model cache is `Settings.model_cache_dir`.)
Existing corpus and index folders are found by these names, so none of them may change."""

from __future__ import annotations

# In the corpus folder.
FEED_LIST = "feeds.yaml"  # the feeds followed (`newsbot feeds`); not an article
WEB_FOLDER = "web"  # what `newsbot add` and `newsbot sync` fetched: web/HOST/DATE-TITLE.md
NOT_ARTICLES = frozenset({FEED_LIST})  # top-level files the corpus walk passes over
# The writers' locks (`index.ingest.corpus_lock`); a name starting with "." is never read.
LOCKS = {"articles": ".newsbot-articles.lock", "feeds": ".newsbot-feeds.lock"}

# In the index folder.
CORPUS_FILES = "corpus_files.json"  # each corpus file's stat as last indexed
FEED_STATE = "feeds.json"  # each feed's ETag/Last-Modified and last fetch

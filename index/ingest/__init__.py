"""Ingest: articles in. Reading the corpus folder (`corpus/`), fetching pages and feeds from
the web (`web/`), and cutting articles into chunks (`chunks`). Imports only the foundation
(`index.errors`, `index.settings`, `index.text`, `index.disk`)."""

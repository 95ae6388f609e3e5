"""Articles from the web: fetching pages politely and safely, extracting their articles,
keeping them in the corpus (`corpus/web/HOST/`)."""

"""Models: loading and running the embedding model, and calling the optional chat model."""

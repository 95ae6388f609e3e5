"""newsbot's core: articles in, cited answers out. Never imports `bot` or discord."""

"""Reindexing: the next generation built beside the one in service, checked, and switched to."""

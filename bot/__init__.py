"""The Discord adapter over `index` (see issue: the Discord bot)."""

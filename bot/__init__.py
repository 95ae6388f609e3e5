"""The Discord adapter over `index`: it imports the core, adds `newsbot bot` (`bot.cli`)."""

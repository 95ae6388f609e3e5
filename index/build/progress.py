"""How the core tells the CLI that indexing advances (only the CLI draws it)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) while indexing; stage is "embed", then "store"."""

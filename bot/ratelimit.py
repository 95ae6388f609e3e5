"""A per-user sliding-window limit on questions."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class RateLimiter:
    """At most `limit` questions per user in any `window` seconds; `limit` 0 turns it off."""

    def __init__(
        self,
        limit: int,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._asked: dict[int, deque[float]] = {}

    def try_acquire(self, user_id: int) -> float:
        """0 if `user_id` may ask now (and counts the question), else seconds until they may."""
        if self.limit == 0:
            return 0.0
        now = self.clock()
        asked = self._asked.setdefault(user_id, deque())
        while asked and asked[0] <= now - self.window:
            asked.popleft()
        if len(asked) >= self.limit:
            return asked[0] + self.window - now
        asked.append(now)
        self._forget_idle(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop users with no question in the window, so months of running stay small."""
        if len(self._asked) < 1024:
            return
        for user_id in [u for u, a in self._asked.items() if not a or a[-1] <= now - self.window]:
            del self._asked[user_id]

"""The usage endpoint's own rate limit and the simulator's clock.

Since about 2026-10-31 ``/api/oauth/usage`` allows about 30 reads an hour per account, shared with Claude Code
(poweruserz/OpenTokenUsage v0.7.15; references/autumn-2026.md §1, §2.4, unverified): the 31st read within an hour gets
429. The limit is the active policy's (``[service] usage_reads_per_hour``). Time comes from :class:`SimClock`, which
tests move forward (``POST /_sim/clock``) instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

__all__ = ["WINDOW_S", "SimClock", "UsageLimiter"]

#: The window the limit counts reads in.
WINDOW_S = 3600.0


class SimClock:
    """Wall-clock time plus an offset that tests advance. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offset = 0.0

    def now(self) -> float:
        """Seconds since the epoch, as the simulator sees them."""
        with self._lock:
            return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward (0 or more); returns the new offset."""
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds) \
                or seconds < 0:
            raise ValueError("The clock moves forward only: give a number of seconds, 0 or more.")
        with self._lock:
            self.offset += float(seconds)
            return self.offset

    def reset(self) -> None:
        with self._lock:
            self.offset = 0.0


class UsageLimiter:
    """The reads of the usage endpoint in the last hour; :meth:`take` says whether one more is allowed."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._reads: deque[float] = deque()

    def take(self, limit: int | None) -> int | None:
        """Count a read when ``limit`` allows it and return None; else the seconds until one is allowed again
        (the read is not counted). ``limit`` None: no limit."""
        if limit is None:
            return None
        now = self._clock.now()
        with self._lock:
            while self._reads and self._reads[0] <= now - WINDOW_S:
                self._reads.popleft()
            if len(self._reads) >= limit:
                return max(1, math.ceil(self._reads[0] + WINDOW_S - now))
            self._reads.append(now)
            return None

    def count(self) -> int:
        """Reads counted in the current window."""
        now = self._clock.now()
        with self._lock:
            return sum(1 for t in self._reads if t > now - WINDOW_S)

    def reset(self) -> None:
        with self._lock:
            self._reads.clear()

"""A heartbeat: when something last showed life, on a monotonic clock (a test passes its
own). Liveness reads several: reconcile passes and watch events (`handlers.kicks`), and the
API server's answers (`kube.client`)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Heartbeat:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()

    def age(self) -> float:
        """Seconds since the last beat (or since it was made)."""
        return self._clock() - self._last

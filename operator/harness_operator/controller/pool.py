"""The threads reconcile passes run on: an explicitly sized pool that knows how long its
oldest queued pass has waited.

Passes call the (blocking) Kubernetes client, so they run off the event loop. A pool of
its own, rather than asyncio's default executor (min(32, CPUs + 4) threads, shared with
anything else calling `to_thread`), makes the bound a setting; the wait of the oldest
queued pass is what liveness reads: a wedged pool fails `/healthz` while every loop still
looks alive from the event loop's side.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from prometheus_client import Histogram

P = ParamSpec("P")
T = TypeVar("T")

QUEUE_WAIT = Histogram(
    "harness_operator_pass_queue_seconds",
    "Time a reconcile pass waited for a thread.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60),
)


class PassPool:
    def __init__(self, workers: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._executor = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="pass")
        self._lock = threading.Lock()
        self._queued: dict[int, float] = {}
        self._ids = itertools.count()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on a pool thread."""
        ticket = next(self._ids)
        with self._lock:
            self._queued[ticket] = self._clock()

        def started() -> T:
            with self._lock:
                queued_at = self._queued.pop(ticket, None)
            if queued_at is not None:
                QUEUE_WAIT.observe(self._clock() - queued_at)
            return fn(*args, **kwargs)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, started)
        finally:
            with self._lock:
                self._queued.pop(ticket, None)  # cancelled before it started

    def oldest_wait(self) -> float:
        """Seconds the longest-queued pass has waited for a thread (0 when none waits)."""
        with self._lock:
            oldest = min(self._queued.values(), default=None)
        return 0.0 if oldest is None else self._clock() - oldest

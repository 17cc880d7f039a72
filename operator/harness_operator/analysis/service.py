"""Prometheus off the reconcile pass: bounded, fair, non-blocking query jobs.

An analysis round or a spend reading is a *job* (a few PromQL queries against one
Prometheus). A reconcile pass asks for a job's result with `ask()`: the job is started on a
pool of its own, and the pass waits for it at most `grace_seconds` — a healthy Prometheus
answers well within that, so the pass decides with the result as if it had queried itself.
A slow or hung one does not hold the pass: `ask()` returns None, the pass goes on (routing,
rollbacks and status do not wait for a query), and `on_done(waiter)` wakes the HD when the
job finishes so its next pass takes the result.

Fairness: at most `per_endpoint` jobs run against one Prometheus address at a time; more
wait in that address's queue without holding a thread. One tenant's hung Prometheus
therefore occupies `per_endpoint` threads at most, and every other address keeps the rest
of the pool. A query's own timeout (`analysis.prometheus.timeoutSeconds`, at most 60 s)
bounds how long a job holds its thread.

A result is handed out once (the pass that takes it counts the round); results nobody
took (the release moved on to another revision) are dropped after `max_age_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from prometheus_client import Counter, Gauge

T = TypeVar("T")

JOBS = Counter(
    "harness_operator_query_jobs",
    "Analysis rounds and spend readings asked for by reconcile passes: started, taken in"
    " time (within the grace), or pending (the pass went on without it).",
    ["result"],
)
QUEUED = Gauge(
    "harness_operator_query_jobs_queued",
    "Query jobs waiting for a slot of their Prometheus (per_endpoint already running).",
)

DEFAULT_GRACE_SECONDS: Final = 0.5


@dataclass
class _Job(Generic[T]):
    owner: Hashable
    endpoint: str
    run: Callable[[], T]
    done: threading.Event = field(default_factory=threading.Event)
    finished_at: float = 0.0
    result: T | None = None
    error: BaseException | None = None
    watching: int = 0  # passes waiting within their grace: they take it, no wake needed
    waiters: set[Hashable] = field(default_factory=set)


class QueryService:
    """See the module doc. `executor=None` runs jobs inline in `ask()` (tests, tools)."""

    def __init__(
        self,
        *,
        max_workers: int = 16,
        per_endpoint: int = 4,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        max_age_seconds: float = 600.0,
        executor: Executor | bool | None = True,
        on_done: Callable[[Hashable], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_endpoint = max(per_endpoint, 1)
        self.grace = grace_seconds
        self.max_age = max_age_seconds
        self.on_done = on_done
        self.clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[Hashable, _Job[Any]] = {}
        self._running: dict[str, int] = defaultdict(int)
        self._queued: dict[str, deque[_Job[Any]]] = defaultdict(deque)
        if executor is True:
            executor = ThreadPoolExecutor(max(max_workers, 1), thread_name_prefix="query")
        self._executor: Executor | None = executor or None

    def ask(
        self,
        key: Hashable,
        endpoint: str,
        run: Callable[[], T],
        *,
        owner: Hashable = None,
        waiter: Hashable = None,
    ) -> T | None:
        """The result of job `key`, or None while it runs. Starts `run` (against
        `endpoint`) when no job `key` exists; a finished job's result is returned once and
        forgotten. Re-raises what `run` raised. `owner` groups jobs for `forget()`."""
        if self._executor is None:
            return run()
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                job = _Job(owner=owner, endpoint=endpoint, run=run)
                self._jobs[key] = job
                self._start_or_queue(job)
                JOBS.labels("started").inc()
            elif job.done.is_set():
                return self._take(key, job)
            job.watching += 1
        job.done.wait(self.grace)
        with self._lock:
            job.watching -= 1
            if job.done.is_set() and self._jobs.get(key) is job:
                JOBS.labels("in_time").inc()
                return self._take(key, job)
            if waiter is not None:
                job.waiters.add(waiter)
        JOBS.labels("pending").inc()
        return None

    def pending(self) -> int:
        """Jobs started or queued and not finished."""
        with self._lock:
            return sum(1 for job in self._jobs.values() if not job.done.is_set())

    def forget(self, owner: Hashable) -> None:
        """Drop the finished jobs of `owner` (a deleted HarnessDeployment); running ones
        are dropped when they finish, unless asked for again."""
        with self._lock:
            for key in [k for k, j in self._jobs.items() if j.owner == owner]:
                job = self._jobs[key]
                if job.done.is_set():
                    del self._jobs[key]
                else:
                    job.waiters.clear()

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- inside the lock -----------------------------------------------------------------

    def _take(self, key: Hashable, job: _Job[T]) -> T | None:
        del self._jobs[key]
        if job.error is not None:
            raise job.error
        return job.result

    def _start_or_queue(self, job: _Job[Any]) -> None:
        if self._running[job.endpoint] < self.per_endpoint:
            self._running[job.endpoint] += 1
            assert self._executor is not None
            self._executor.submit(self._run, job)
        else:
            self._queued[job.endpoint].append(job)
            QUEUED.inc()

    # -- on a pool thread ----------------------------------------------------------------

    def _run(self, job: _Job[Any]) -> None:
        try:
            job.result = job.run()
        except Exception as err:  # handed to the pass that takes the result
            job.error = err
        with self._lock:
            job.finished_at = self.clock()
            job.done.set()
            wake = set() if job.watching else job.waiters
            job.waiters = set()
            self._running[job.endpoint] -= 1
            queue = self._queued[job.endpoint]
            if queue:
                QUEUED.dec()
                self._start_or_queue(queue.popleft())
            elif not self._running[job.endpoint]:
                del self._running[job.endpoint], self._queued[job.endpoint]
            self._drop_untaken()
        if self.on_done is not None:
            for waiter in wake:
                self.on_done(waiter)

    def _drop_untaken(self) -> None:
        horizon = self.clock() - self.max_age
        for key in [
            k for k, j in self._jobs.items() if j.done.is_set() and j.finished_at < horizon
        ]:
            del self._jobs[key]

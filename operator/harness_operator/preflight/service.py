"""The preflight service: cached, bounded, non-blocking credential and model checks.

A reconcile pass asks `verdict()` and never waits for a provider: a cached verdict comes
back at once; otherwise the check is started on a small pool of its own and the pass gets
`Checking` (the release holds); when the check answers, `on_done` wakes every HD that asked
so its next pass sees the result. A slow provider therefore delays nothing but the
revision waiting for it — rollbacks of other harnesses never queue behind a preflight.

Results are cached per (provider, settings, model, call, SHA-256 of the credential): a
thousand harnesses sharing one key cost one call per TTL, and a changed Secret is a new key,
so a fix is checked at once. Passed, failed and unverified verdicts live for the TTL and are
refreshed in the background when stale (the stale verdict is served meanwhile, so the
condition does not flap). Inconclusive ones (429, 529, timeouts, ...) are retried with
exponential backoff, at least as late as the provider's `retry-after`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import Counter, Histogram

from harness_operator.preflight.calls import CheckRequest, call_for, run_check
from harness_operator.preflight.verdict import CHECKING, PreflightOutcome, Verdict

CHECKS = Counter(
    "harness_operator_preflight_checks",
    "Credential and model checks sent to providers, by provider and outcome.",
    ["provider", "outcome"],
)
LOOKUPS = Counter(
    "harness_operator_preflight_lookups",
    "Preflight verdicts asked for by reconcile passes: hit (cached), stale (cached, being"
    " refreshed), miss (a check was started) or waiting (one is under way).",
    ["result"],
)
LATENCY = Histogram(
    "harness_operator_preflight_duration_seconds",
    "Duration of one credential and model check.",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

FIRST_RETRY_SECONDS: Final = 2.0
MAX_RETRY_SECONDS: Final = 300.0


def backoff(attempt: int) -> float:
    """Seconds before retry number `attempt` (1-based) of an inconclusive check."""
    return float(min(FIRST_RETRY_SECONDS * 2 ** (attempt - 1), MAX_RETRY_SECONDS))


def cache_key(request: CheckRequest) -> tuple[str, ...]:
    model = request.model
    digest = hashlib.sha256((request.credential or "").encode()).hexdigest()
    return (
        str(model.provider),
        model.name,
        model.region or "",
        model.project_id or "",
        model.resource or "",
        model.base_url or "",
        call_for(model) or "",
        digest,
    )


@dataclass
class _Entry:
    verdict: Verdict | None = None
    expires: float = 0.0
    attempts: int = 0
    running: bool = False
    waiters: set[Hashable] = field(default_factory=set)


class PreflightService:
    """See the module doc. `executor=None` runs checks inline (for tests and tools)."""

    def __init__(
        self,
        *,
        ttl_seconds: float = 600.0,
        max_concurrent: int = 4,
        timeout_seconds: float = 10.0,
        executor: Executor | bool | None = True,
        on_done: Callable[[Hashable], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        check: Callable[[CheckRequest, float], Verdict] = run_check,
    ) -> None:
        self.ttl = ttl_seconds
        self.timeout = timeout_seconds
        self.on_done = on_done
        self.clock = clock
        self._check = check
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], _Entry] = {}
        if executor is True:
            executor = ThreadPoolExecutor(max_concurrent, thread_name_prefix="preflight")
        self._executor: Executor | None = executor or None

    def verdict(self, request: CheckRequest, waiter: Hashable = None) -> Verdict:
        """The verdict for `request`, now: cached, or `Checking` while a check runs (then
        `on_done(waiter)` is called when it answers)."""
        key = cache_key(request)
        now = self.clock()
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            fresh = entry.verdict is not None and now < entry.expires
            if fresh:
                LOOKUPS.labels("hit").inc()
                return self._served(entry, now)
            if entry.running:
                if waiter is not None:
                    entry.waiters.add(waiter)
                LOOKUPS.labels("waiting" if entry.verdict is None else "stale").inc()
                return self._served(entry, now) if entry.verdict else CHECKING
            entry.running = True
            if waiter is not None:
                entry.waiters.add(waiter)
            stale = (
                entry.verdict is not None
                and entry.verdict.outcome is not PreflightOutcome.INCONCLUSIVE
            )
            LOOKUPS.labels("stale" if stale else "miss").inc()
        if self._executor is None:
            self._run(key, request)
            with self._lock:
                return self._served(self._entries[key], self.clock())
        self._executor.submit(self._run, key, request)
        with self._lock:
            return self._served(entry, now) if stale else CHECKING

    def _served(self, entry: _Entry, now: float) -> Verdict:
        assert entry.verdict is not None
        if entry.verdict.outcome is PreflightOutcome.INCONCLUSIVE:
            return entry.verdict.with_retry(max(entry.expires - now, 0.0))
        return entry.verdict

    def _run(self, key: tuple[str, ...], request: CheckRequest) -> None:
        provider = str(request.model.provider)
        try:
            verdict = self._check(request, self.timeout)
        except Exception as err:  # a bug must not wedge the entry in `running`
            verdict = Verdict(
                PreflightOutcome.INCONCLUSIVE,
                "CheckError",
                f"the check failed: {type(err).__name__}",
            )
        if verdict.latency_seconds is not None:
            LATENCY.labels(provider).observe(verdict.latency_seconds)
        if verdict.outcome is not PreflightOutcome.UNVERIFIED:
            CHECKS.labels(provider, str(verdict.outcome)).inc()
        with self._lock:
            entry = self._entries[key]
            now = self.clock()
            if verdict.outcome is PreflightOutcome.INCONCLUSIVE:
                entry.attempts += 1
                wait = max(backoff(entry.attempts), verdict.retry_after or 0.0)
            else:
                entry.attempts = 0
                wait = self.ttl
            entry.verdict, entry.expires, entry.running = verdict, now + wait, False
            waiters, entry.waiters = entry.waiters, set()
        if self.on_done is not None and self._executor is not None:
            for waiter in waiters:
                self.on_done(waiter)

    def forget_unused(self, max_age: float | None = None) -> None:
        """Drop entries that expired more than `max_age` (default: one TTL) ago, so the
        cache stays as large as the set of credentials in use."""
        horizon = self.clock() - (self.ttl if max_age is None else max_age)
        with self._lock:
            for key in [
                k for k, e in self._entries.items() if not e.running and e.expires < horizon
            ]:
                del self._entries[key]

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

"""The query service keeps Prometheus off the reconcile pass: a job that answers within the
grace is taken at once; a slow one leaves the pass free and wakes the HD when it is in; a
hung Prometheus holds at most `per_endpoint` threads, so another one's jobs still run."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator

import pytest

from harness_operator.analysis.service import QueryService

WAIT = 10.0  # a bound for events that must happen; never reached when the code is right


class Gate:
    """A job that blocks until opened, and says when it started."""

    def __init__(self, value: object = "answer") -> None:
        self.value = value
        self.started = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> object:
        self.started.set()
        assert self.opened.wait(WAIT), "the test never opened the gate"
        return self.value


class Woken:
    def __init__(self) -> None:
        self.waiters: list[Hashable] = []
        self.event = threading.Event()

    def __call__(self, waiter: Hashable) -> None:
        self.waiters.append(waiter)
        self.event.set()


@pytest.fixture
def woken() -> Woken:
    return Woken()


@pytest.fixture
def service(woken: Woken) -> Iterator[QueryService]:
    svc = QueryService(max_workers=4, per_endpoint=2, grace_seconds=0.05, on_done=woken)
    yield svc
    svc.shutdown()


def test_a_quick_answer_is_taken_in_the_same_pass(woken: Woken) -> None:
    svc = QueryService(grace_seconds=WAIT, on_done=woken)
    try:
        assert svc.ask("k", "http://prom", lambda: 42, waiter="hd") == 42
        assert svc.pending() == 0
    finally:
        svc.shutdown()
    assert woken.waiters == []  # the pass took it: no extra wake-up


def test_a_slow_job_leaves_the_pass_and_wakes_the_waiter(
    service: QueryService, woken: Woken
) -> None:
    gate = Gate(7)
    assert service.ask("k", "http://prom", gate, waiter=("ns", "hd")) is None
    # Asked again while it runs: still pending, and not started twice.
    assert service.ask("k", "http://prom", Gate(), waiter=("ns", "hd")) is None
    gate.opened.set()
    assert woken.event.wait(WAIT)
    assert woken.waiters == [("ns", "hd")]
    assert service.ask("k", "http://prom", Gate(), waiter=("ns", "hd")) == 7
    # Handed out once: the next ask starts a new job.
    again = Gate(8)
    assert service.ask("k", "http://prom", again) is None
    assert again.started.wait(WAIT)
    again.opened.set()


def test_a_hung_prometheus_holds_at_most_per_endpoint_threads(service: QueryService) -> None:
    hung = [Gate() for _ in range(5)]
    for i, gate in enumerate(hung):
        assert service.ask(("hung", i), "http://hung", gate) is None
    assert hung[0].started.wait(WAIT)
    assert hung[1].started.wait(WAIT)
    assert not any(g.started.is_set() for g in hung[2:])  # queued without a thread
    # Another tenant's Prometheus still gets a thread at once.
    healthy = Gate("fine")
    assert service.ask("other", "http://healthy", healthy) is None
    assert healthy.started.wait(WAIT)
    healthy.opened.set()
    # When a hung job ends (its query timed out), the next queued one for that address runs.
    hung[0].opened.set()
    assert hung[2].started.wait(WAIT)
    assert not hung[3].started.is_set()
    for gate in hung:
        gate.opened.set()


def test_what_the_job_raised_reaches_the_pass_that_takes_it(
    service: QueryService, woken: Woken
) -> None:
    gate = Gate()

    def broken() -> object:
        gate()
        raise RuntimeError("a bug")

    assert service.ask("k", "http://prom", broken, waiter="hd") is None
    gate.opened.set()
    assert woken.event.wait(WAIT)
    with pytest.raises(RuntimeError, match="a bug"):
        service.ask("k", "http://prom", broken, waiter="hd")


def test_forget_drops_an_owners_results(service: QueryService, woken: Woken) -> None:
    gate = Gate(1)
    assert service.ask("k", "http://prom", gate, owner="hd", waiter="hd") is None
    gate.opened.set()
    assert woken.event.wait(WAIT)
    service.forget("hd")
    fresh = Gate(2)
    assert service.ask("k", "http://prom", fresh, owner="hd") is None  # a new job
    assert fresh.started.wait(WAIT)
    fresh.opened.set()


def test_untaken_results_are_dropped_after_max_age(woken: Woken) -> None:
    now = [0.0]
    svc = QueryService(grace_seconds=0.0, max_age_seconds=60, on_done=woken, clock=lambda: now[0])
    try:
        finish(svc, woken, ("round", "rev-a"), "untaken")  # the release moved on
        now[0] = 61.0
        finish(svc, woken, ("round", "rev-b"), "taken later")  # a finish sweeps old ones
        replacement = Gate("fresh")
        assert svc.ask(("round", "rev-a"), "http://prom", replacement) is None
        assert replacement.started.wait(WAIT)  # rev-a's old answer was gone: a new job
        replacement.opened.set()
    finally:
        svc.shutdown()


def finish(svc: QueryService, woken: Woken, key: Hashable, value: object) -> None:
    """Start job `key` and wait until it has finished (its waiter was woken)."""
    woken.event.clear()
    gate = Gate(value)
    assert svc.ask(key, "http://prom", gate, waiter=key) is None
    gate.opened.set()
    assert woken.event.wait(WAIT)


def test_inline_mode_runs_the_job_in_the_pass() -> None:
    svc = QueryService(executor=None)
    assert svc.ask("k", "http://prom", lambda: "now") == "now"
    assert svc.pending() == 0

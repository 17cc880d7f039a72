"""/healthz fails when reconcile loops exist but nothing has shown life for too long: longer
than three resync periods, and never sooner than a minute; and when a pass has waited that
long for a thread of the pass pool (a wedged pool, while watch events still arrive)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import kopf
import pytest

from harness_operator.config import OperatorConfig
from harness_operator.controller.pool import PassPool
from harness_operator.handlers import harness
from harness_operator.handlers.kicks import KICKS
from harness_operator.heartbeat import Heartbeat


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The probe's heartbeat, on a test clock; it beat just now."""
    clock = Clock()
    monkeypatch.setattr(harness, "HEARTBEAT", Heartbeat(clock))
    pool = PassPool(1, clock)
    monkeypatch.setattr(harness, "passes", lambda: pool)
    monkeypatch.setattr(harness, "LAST_ANSWER", Heartbeat(clock))
    return clock


@pytest.fixture
def loop() -> Iterator[None]:
    """One running reconcile loop, registered as `reconcile_loop` registers it."""
    event = KICKS.register("ns", "web")
    yield
    KICKS.unregister("ns", "web", event)


def resync(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(harness, "operator_config", lambda: OperatorConfig(resync_seconds=seconds))


# (resync, the longest silence that is still healthy): three resyncs, at least a minute.
LIMITS = [(2.0, 60.0), (30.0, 90.0)]


@pytest.mark.usefixtures("loop")
@pytest.mark.parametrize(("resync_seconds", "limit"), LIMITS)
def test_a_loop_silent_up_to_the_limit_is_healthy(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, resync_seconds: float, limit: float
) -> None:
    resync(monkeypatch, resync_seconds)
    clock.advance(limit)

    harness.LAST_ANSWER.beat()
    assert harness.loops_alive() == {
        "loops": 1.0,
        "last_activity_seconds": limit,
        "pass_queue_seconds": 0.0,
        "apiserver_silence_seconds": 0.0,
    }


@pytest.mark.usefixtures("loop")
@pytest.mark.parametrize(("resync_seconds", "limit"), LIMITS)
def test_a_loop_silent_past_the_limit_fails_the_probe(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, resync_seconds: float, limit: float
) -> None:
    resync(monkeypatch, resync_seconds)
    clock.advance(limit + 1)

    with pytest.raises(
        kopf.PermanentError, match=f"no reconcile pass or watch activity for {limit + 1:.0f}s"
    ):
        harness.loops_alive()


@pytest.mark.usefixtures("loop")
def test_a_heartbeat_after_a_silence_makes_the_probe_healthy_again(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    resync(monkeypatch, 2.0)
    clock.advance(120)
    with pytest.raises(kopf.PermanentError):
        harness.loops_alive()

    harness.HEARTBEAT.beat()  # a loop ran a pass, or a watch event arrived
    harness.LAST_ANSWER.beat()
    clock.advance(1)

    assert harness.loops_alive()["last_activity_seconds"] == 1.0


def test_no_harness_deployments_means_nothing_to_be_stale_about(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    resync(monkeypatch, 2.0)
    clock.advance(600)

    assert harness.loops_alive()["loops"] == 0.0


def test_kicks_wake_only_the_named_loop() -> None:
    async def scenario() -> tuple[bool, bool]:
        web = KICKS.register("ns", "web")
        api = KICKS.register("ns", "api")
        KICKS.kick("ns", "web")
        KICKS.kick("ns", "missing")  # no loop: dropped
        result = (web.is_set(), api.is_set())
        KICKS.unregister("ns", "web", web)
        KICKS.unregister("ns", "api", api)
        return result

    assert asyncio.run(scenario()) == (True, False)


@pytest.mark.usefixtures("loop")
def test_a_pass_waiting_for_a_thread_past_the_limit_fails_the_probe(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """The pool's only thread is stuck; watch events keep the heartbeat young meanwhile."""
    resync(monkeypatch, 2.0)
    pool = harness.passes()
    stuck = threading.Event()
    verdicts: list[str] = []

    async def scenario() -> None:
        blocker = asyncio.ensure_future(pool.run(stuck.wait, 10))
        queued = asyncio.ensure_future(pool.run(lambda: None))
        await asyncio.sleep(0)  # both submitted; the second has no thread
        clock.advance(59)
        harness.HEARTBEAT.beat()  # a watch event
        harness.LAST_ANSWER.beat()
        verdicts.append(str(harness.loops_alive()["pass_queue_seconds"]))
        clock.advance(2)
        harness.HEARTBEAT.beat()
        harness.LAST_ANSWER.beat()
        try:
            harness.loops_alive()
        except kopf.PermanentError as err:
            verdicts.append(str(err))
        stuck.set()
        await asyncio.gather(blocker, queued)
        verdicts.append(str(harness.loops_alive()["pass_queue_seconds"]))

    asyncio.run(scenario())
    assert verdicts == ["59.0", "a reconcile pass has waited 61s for a thread", "0.0"]


@pytest.mark.usefixtures("loop")
def test_an_api_server_that_stops_answering_fails_the_probe(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """Watch events and failed passes keep the heartbeat young; nothing answers."""
    resync(monkeypatch, 2.0)
    clock.advance(60)
    harness.HEARTBEAT.beat()
    assert harness.loops_alive()["apiserver_silence_seconds"] == 60.0
    clock.advance(1)
    harness.HEARTBEAT.beat()
    with pytest.raises(kopf.PermanentError, match="the API server has not answered for 61s"):
        harness.loops_alive()
    harness.LAST_ANSWER.beat()  # it is back
    assert harness.loops_alive()["apiserver_silence_seconds"] == 0.0

"""/healthz fails when reconcile loops exist but nothing has shown life for too long: longer
than three resync periods, and never sooner than a minute."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import kopf
import pytest

from harness_operator.config import OperatorConfig
from harness_operator.handlers import harness
from harness_operator.handlers.kicks import KICKS, Heartbeat


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

    assert harness.loops_alive() == {"loops": 1.0, "last_activity_seconds": limit}


@pytest.mark.usefixtures("loop")
@pytest.mark.parametrize(("resync_seconds", "limit"), LIMITS)
def test_a_loop_silent_past_the_limit_fails_the_probe(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, resync_seconds: float, limit: float
) -> None:
    resync(monkeypatch, resync_seconds)
    clock.advance(limit + 1)

    with pytest.raises(
        kopf.PermanentError, match=f"no reconcile loop or watch activity for {limit + 1:.0f}s"
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
    clock.advance(1)

    assert harness.loops_alive() == {"loops": 1.0, "last_activity_seconds": 1.0}


def test_no_harness_deployments_means_nothing_to_be_stale_about(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    resync(monkeypatch, 2.0)
    clock.advance(600)

    assert harness.loops_alive() == {"loops": 0.0, "last_activity_seconds": 600.0}


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

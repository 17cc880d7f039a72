"""/healthz fails when reconcile loops exist but nothing has shown life for too long."""

from __future__ import annotations

import asyncio

import kopf
import pytest

from harness_operator.handlers import harness
from harness_operator.handlers.kicks import HEARTBEAT, KICKS


def test_healthy_while_loops_and_watches_are_active(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HEARTBEAT, "age", lambda: 5.0)
    report = harness.loops_alive()
    assert report["last_activity_seconds"] == 5.0


def test_fails_when_loops_exist_and_everything_went_silent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(HEARTBEAT, "age", lambda: 600.0)
    event = KICKS.register("ns", "web")
    try:
        with pytest.raises(kopf.PermanentError, match="no reconcile loop or watch activity"):
            harness.loops_alive()
    finally:
        KICKS.unregister("ns", "web", event)


def test_no_harness_deployments_means_nothing_to_be_stale_about(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(HEARTBEAT, "age", lambda: 600.0)
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

"""The reconcile loop wakes exactly when a step may end (so releases keep their schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness_operator.api import HarnessDeploymentSpec, HarnessDeploymentStatus
from harness_operator.controller.reconciler import _seconds_to_step_end

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def spec(**rollout: object) -> HarnessDeploymentSpec:
    return HarnessDeploymentSpec.model_validate({"image": "a/b:1", "rollout": rollout})


def status(**fields: object) -> HarnessDeploymentStatus:
    return HarnessDeploymentStatus.model_validate(fields)


def test_a_step_ends_after_interval_plus_its_pause() -> None:
    s = spec(steps=[{"weight": 10}, {"weight": 50, "pause": "30s"}], interval="10s")
    started = NOW - timedelta(seconds=4)
    first = status(phase="Progressing", stage="Analysing", currentStep=0, stepStartedAt=started)
    second = status(phase="Progressing", stage="Analysing", currentStep=1, stepStartedAt=started)
    assert _seconds_to_step_end(first, s, NOW) == 6.0
    assert _seconds_to_step_end(second, s, NOW) == 36.0


def test_an_overdue_step_wakes_almost_at_once_and_untimed_stages_never() -> None:
    s = spec(interval="10s")
    late = status(phase="Progressing", stage="Analysing", stepStartedAt=NOW - timedelta(minutes=1))
    assert _seconds_to_step_end(late, s, NOW) == 0.05
    waiting = status(phase="Progressing", stage="WaitingForCanary")
    assert _seconds_to_step_end(waiting, s, NOW) == float("inf")
    assert _seconds_to_step_end(status(phase="Ready"), s, NOW) == float("inf")

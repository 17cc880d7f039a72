"""The conditions the operator publishes, read the way GitOps tools and CI read them.

`kstatus()` below is the verdict Flux computes (cli-utils `pkg/kstatus/status/generic.go`,
as summarised in ai-anchors-2026.md §1), written out independently of the code under test;
the integration suite checks the same against the real library.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from harness_operator.controller.status import (
    Observation,
    Problem,
    status_patch,
    transitions,
    with_conditions,
)
from harness_operator.preflight import CHECKING, PreflightOutcome, Verdict
from harness_operator.rollout import WorkloadState

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
AVAILABLE = WorkloadState(exists=True, desired=2, updated=2, available=2, ready=True)
ROLLING = WorkloadState(exists=True, desired=2, updated=1, available=1, ready=False)
REFUSED = Verdict(PreflightOutcome.FAILED, "InvalidCredentials", "401")


def kstatus(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return "InProgress"
    conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
    if conditions.get("Reconciling") == "True":
        return "InProgress"
    if conditions.get("Stalled") == "True":
        return "Failed"
    if conditions.get("Ready") == "False":
        return "InProgress"
    return "Current"


def observe(
    phase: str | None,
    *,
    stable: WorkloadState = AVAILABLE,
    problems: tuple[Problem, ...] = (),
    credentials: Verdict | None = None,
    **release: Any,
) -> dict[str, Any]:
    seen = Observation(
        generation=3,
        problems=problems,
        missing_configs=(),
        stable=stable,
        credentials=credentials,
    )
    body = {"phase": phase, **release} if phase else dict(release)
    status = with_conditions(seen, body, {}, NOW)
    return {"metadata": {"generation": 3}, "status": status}


def cond(obj: dict[str, Any], type_: str) -> tuple[str, str]:
    found = next(c for c in obj["status"]["conditions"] if c["type"] == type_)
    return found["status"], found["reason"]


ROLLBACK = {"reason": "AnalysisFailed", "revision": "bad", "message": "error-rate 0.3"}
CASES: list[tuple[str, dict[str, Any], str, tuple[str, str], tuple[str, str]]] = [
    # name, observe(...) kwargs, kstatus, Ready, Released
    (
        "first rollout",
        {"phase": "Initializing", "stable": ROLLING},
        "InProgress",
        ("False", "StableUnavailable"),
        ("Unknown", "Deploying"),
    ),
    (
        "first deploy done",
        {"phase": "Ready"},
        "Current",
        ("True", "StableAvailable"),
        ("True", "Deployed"),
    ),
    (
        "release running",
        {"phase": "Progressing", "releaseCount": 1},
        "InProgress",
        ("False", "Releasing"),
        ("Unknown", "Releasing"),
    ),
    (
        "release paused",
        {"phase": "Paused", "releaseCount": 1},
        "InProgress",
        ("False", "Releasing"),
        ("Unknown", "Releasing"),
    ),
    (
        "promoting",
        {"phase": "Promoting", "releaseCount": 1},
        "InProgress",
        ("False", "Releasing"),
        ("Unknown", "Releasing"),
    ),
    (
        "promoted",
        {"phase": "Ready", "releaseCount": 1},
        "Current",
        ("True", "StableAvailable"),
        ("True", "Promoted"),
    ),
    (
        "rolled back",
        {"phase": "RolledBack", "releaseCount": 1, "rollback": ROLLBACK},
        "Failed",
        ("False", "RolledBack"),
        ("False", "RolledBack"),
    ),
    (
        # Short of replicas after a promotion: the release's outcome still stands.
        "degraded at rest",
        {"phase": "Degraded", "stable": ROLLING, "releaseCount": 2},
        "InProgress",
        ("False", "StableUnavailable"),
        ("True", "Promoted"),
    ),
    (
        "spec cannot be realised",
        {"phase": None, "problems": (Problem("MissingReference", "Secret/x is missing"),)},
        "Failed",
        ("False", "MissingReference"),
        ("False", "Blocked"),
    ),
    (
        "release held by a refused key",
        {"phase": "Progressing", "releaseCount": 1, "credentials": REFUSED},
        "Failed",
        ("False", "Releasing"),
        ("Unknown", "Releasing"),
    ),
    (
        "release waiting for a check",
        {"phase": "Progressing", "releaseCount": 1, "credentials": CHECKING},
        "InProgress",
        ("False", "Releasing"),
        ("Unknown", "Releasing"),
    ),
    (
        "first deploy with a refused key",
        {"phase": "Initializing", "credentials": REFUSED},
        "Failed",
        ("False", "CredentialsNotVerified"),
        ("Unknown", "Deploying"),
    ),
]


@pytest.mark.parametrize(
    ("given", "verdict", "ready", "released"),
    [pytest.param(g, v, r, d, id=i) for i, g, v, r, d in CASES],
)
def test_gitops_and_ci_read_the_right_verdict(
    given: dict[str, Any], verdict: str, ready: tuple[str, str], released: tuple[str, str]
) -> None:
    obj = observe(**given)
    assert kstatus(obj) == verdict
    assert cond(obj, "Ready") == ready
    assert cond(obj, "Released") == released


def test_a_status_behind_the_generation_is_in_progress() -> None:
    obj = observe("Ready")
    obj["metadata"]["generation"] = 4
    assert kstatus(obj) == "InProgress"


def test_every_condition_carries_the_generation() -> None:
    obj = observe("Ready")
    assert {c["observedGeneration"] for c in obj["status"]["conditions"]} == {3}
    assert obj["status"]["observedGeneration"] == 3


def test_a_problem_marks_a_first_deploy_failed_but_keeps_a_release_phase() -> None:
    problem = (Problem("Conflict", "Service x exists"),)
    failed = observe(None, problems=problem)["status"]
    assert failed["phase"] == "Failed"
    assert failed["message"] == "the spec cannot be realised: Service x exists"
    assert observe("Progressing", problems=problem)["status"]["phase"] == "Progressing"


def test_converged_status_is_no_patch_and_times_stay() -> None:
    seen = Observation(generation=3, problems=(), missing_configs=(), stable=AVAILABLE)
    first = with_conditions(seen, {"phase": "Ready"}, {}, NOW)
    later = with_conditions(seen, {"phase": "Ready"}, first, NOW.replace(hour=13))
    assert status_patch(first, later) is None
    assert transitions(first, later) == []


def test_a_transition_moves_only_its_condition_time() -> None:
    seen = Observation(generation=3, problems=(), missing_configs=(), stable=AVAILABLE)
    first = with_conditions(seen, {"phase": "Ready"}, {}, NOW)
    later = with_conditions(seen, {"phase": "Progressing"}, first, NOW.replace(hour=13))
    changed = {t for t, _ in transitions(first, later)}
    assert changed == {"Ready", "Reconciling", "Released", "Progressing"}
    times = {c["type"]: c["lastTransitionTime"] for c in later["conditions"]}
    assert times["Ready"] == "2026-12-01T13:00:00Z"
    assert times["Degraded"] == "2026-12-01T12:00:00Z"
    patch = status_patch(first, later)
    assert patch is not None
    assert set(patch) == {"phase", "conditions"}


def test_status_patch_removes_what_is_gone() -> None:
    assert status_patch({"a": 1, "b": {"c": 1, "d": 2}}, {"b": {"c": 1}}) == {
        "a": None,
        "b": {"d": None},
    }

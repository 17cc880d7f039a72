"""The operator's own metrics: a deleted HarnessDeployment leaves no series behind, and the
series of every other HarnessDeployment stay as they were."""

from __future__ import annotations

import uuid
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness_operator import metrics

Series = tuple[str, frozenset[tuple[str, str]]]

PER_HARNESS = {
    "harness_canary_weight",
    "harness_canary_phase",
    "harness_canary_failed_checks",
    "harness_canary_error_checks",
    "harness_canary_metric_value",
    "harness_canary_check_outcome",
    "harness_canary_promotions_total",
    "harness_canary_rollbacks_total",
    "harness_operator_reconcile_errors_total",
    "harness_budget_spent_usd",
    "harness_budget_limit_usd",
    "harness_budget_remaining_usd",
    "harness_budget_hours_to_exhaustion",
    "harness_budget_burn_usd_per_hour",
    "harness_budget_step",
}
"""Every per-HarnessDeployment series name the operator exports (counters with `_total`)."""


def status(error_rate: float) -> dict[str, Any]:
    """A release mid-analysis with three checks and a budget with two windows."""
    return {
        "phase": "Progressing",
        "canaryWeight": 40,
        "failedChecks": 1,
        "errorChecks": 2,
        "lastAnalysis": {
            "outcome": "Fail",
            "results": [
                {"name": "error-rate", "outcome": "Fail", "value": error_rate},
                {"name": "latency", "outcome": "Pass", "value": 1.2, "stableValue": 1.0},
                {"name": "cost", "outcome": "Error"},
            ],
        },
        "budget": {
            "step": "Warning",
            "checkedAt": "2025-01-01T10:00:00Z",
            "burnUsdPerHour": 2.5,
            "windows": [
                {
                    "window": "hour",
                    "limitUsd": 5.0,
                    "spentUsd": 4.0,
                    "remainingUsd": 1.0,
                    "resetsAt": "2025-01-01T11:00:00Z",
                    "exhaustsAt": "2025-01-01T10:24:00Z",
                },
                {
                    "window": "day",
                    "limitUsd": 50.0,
                    "spentUsd": 10.0,
                    "remainingUsd": 40.0,
                    "resetsAt": "2025-01-02T00:00:00Z",
                },
            ],
        },
    }


def exported(namespace: str) -> dict[str, set[Series]]:
    """The series /metrics would serve for each HarnessDeployment in `namespace`, by name,
    parsed from the exposition text (as Prometheus would see them)."""
    found: dict[str, set[Series]] = {}
    text = generate_latest(REGISTRY).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("namespace") == namespace and not sample.name.endswith("_created"):
                series = (sample.name, frozenset(sample.labels.items()))
                found.setdefault(sample.labels["name"], set()).add(series)
    return found


def run_releases(namespace: str, name: str, error_rate: float) -> None:
    """What the reconcile loop records for an HD over a few releases."""
    metrics.record_status(namespace, name, status(error_rate))
    metrics.PROMOTIONS.labels(namespace, name).inc()
    metrics.ROLLBACKS.labels(namespace, name, "CheckFailed").inc()
    metrics.ROLLBACKS.labels(namespace=namespace, name=name, reason="Aborted").inc()
    metrics.RECONCILE_ERRORS.labels(namespace, name).inc()


def test_forget_removes_every_series_of_one_harness_and_keeps_the_others() -> None:
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    run_releases(namespace, "gone", 0.3)
    run_releases(namespace, "kept", 0.01)
    before = exported(namespace)
    for hd in ("gone", "kept"):
        assert {series_name for series_name, _ in before[hd]} == PER_HARNESS, hd
    checks = {dict(labels).get("check") for _, labels in before["gone"]}
    assert checks >= {"error-rate", "latency", "cost"}
    reasons = {dict(labels).get("reason") for _, labels in before["gone"]}
    assert reasons >= {"CheckFailed", "Aborted"}

    metrics.forget(namespace, "gone")

    after = exported(namespace)
    assert "gone" not in after, sorted(after.get("gone", ()))
    assert after["kept"] == before["kept"]


def test_a_harness_recreated_after_forget_is_forgotten_again() -> None:
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    run_releases(namespace, "again", 0.3)
    metrics.forget(namespace, "again")
    metrics.forget(namespace, "again")  # a second DELETED event is harmless

    run_releases(namespace, "again", 0.2)
    assert {series_name for series_name, _ in exported(namespace)["again"]} == PER_HARNESS
    metrics.forget(namespace, "again")

    assert exported(namespace) == {}

"""The operator's own Prometheus metrics, in one place (like Flagger's recorder), so
dashboards built for `flagger_canary_*` map over: weight, phase, analysis values, failed and
error checks, promotions and rollbacks, and how long reconciles take."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from harness_operator.api import Phase

LABELS = ("namespace", "name")

CANARY_WEIGHT = Gauge("harness_canary_weight", "Percent of traffic on the canary.", LABELS)
PHASE = Gauge(
    "harness_canary_phase", "1 for the HarnessDeployment's current phase.", [*LABELS, "phase"]
)
FAILED_CHECKS = Gauge(
    "harness_canary_failed_checks", "Failed analysis rounds in the current release.", LABELS
)
ERROR_CHECKS = Gauge(
    "harness_canary_error_checks", "Consecutive analysis rounds with a query error.", LABELS
)
METRIC_VALUE = Gauge(
    "harness_canary_metric_value",
    "Last value of each analysis check, per track.",
    [*LABELS, "check", "track"],
)
CHECK_OUTCOME = Gauge(
    "harness_canary_check_outcome",
    "1 for the last outcome of each analysis check (Pass, Fail, Inconclusive, Error).",
    [*LABELS, "check", "outcome"],
)
PROMOTIONS = Counter("harness_canary_promotions", "Releases promoted.", LABELS)
ROLLBACKS = Counter(
    "harness_canary_rollbacks", "Releases rolled back, by reason.", [*LABELS, "reason"]
)
RECONCILE_SECONDS = Histogram(
    "harness_operator_reconcile_duration_seconds",
    "Duration of one reconcile pass of a HarnessDeployment.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = Counter(
    "harness_operator_reconcile_errors", "Reconcile passes that failed.", LABELS
)

OUTCOMES = ("Pass", "Fail", "Inconclusive", "Error")


@contextmanager
def timed() -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        RECONCILE_SECONDS.observe(time.perf_counter() - started)


def record_status(namespace: str, name: str, status: Mapping[str, Any]) -> None:
    """Mirror a HarnessDeployment's status into the gauges."""
    CANARY_WEIGHT.labels(namespace, name).set(int(status.get("canaryWeight") or 0))
    current = status.get("phase")
    for phase in Phase:
        PHASE.labels(namespace, name, str(phase)).set(1 if str(phase) == current else 0)
    FAILED_CHECKS.labels(namespace, name).set(int(status.get("failedChecks") or 0))
    ERROR_CHECKS.labels(namespace, name).set(int(status.get("errorChecks") or 0))
    results: Iterable[Mapping[str, Any]] = (status.get("lastAnalysis") or {}).get("results") or []
    for result in results:
        check = str(result.get("name"))
        for track, key in (("canary", "value"), ("stable", "stableValue")):
            value = result.get(key)
            if value is not None:
                METRIC_VALUE.labels(namespace, name, check, track).set(float(value))
        for outcome in OUTCOMES:
            CHECK_OUTCOME.labels(namespace, name, check, outcome).set(
                1 if result.get("outcome") == outcome else 0
            )


def forget(namespace: str, name: str) -> None:
    """Drop the series of a deleted HarnessDeployment."""
    for gauge in (CANARY_WEIGHT, FAILED_CHECKS, ERROR_CHECKS):
        with suppress(KeyError):
            gauge.remove(namespace, name)
    for phase in Phase:
        with suppress(KeyError):
            PHASE.remove(namespace, name, str(phase))

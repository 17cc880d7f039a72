"""The operator's own Prometheus metrics, in one place (like Flagger's recorder), so
dashboards built for `flagger_canary_*` map over: weight, phase, analysis values, failed and
error checks, promotions and rollbacks, and how long reconciles take."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from harness_operator.api import Phase

LABELS = ("namespace", "name")


class _Series:
    """Every label set the per-HarnessDeployment metrics were given, by (namespace, name),
    so that `forget` removes exactly what was created (prometheus_client removes a series
    only when told its full label set)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[tuple[str, str], set[tuple[Gauge | Counter, tuple[str, ...]]]] = {}

    def add(
        self,
        metric: Gauge | Counter,
        labelnames: Sequence[str],
        values: Sequence[object],
        named: Mapping[str, object],
    ) -> None:
        """Record the label set `metric.labels(*values, **named)` returned, normalised as
        prometheus_client does: positional or by name, as strings."""
        ordered = tuple(str(named[n]) for n in labelnames) if named else tuple(map(str, values))
        with self._lock:
            self._sets.setdefault((ordered[0], ordered[1]), set()).add((metric, ordered))

    def pop(self, namespace: str, name: str) -> set[tuple[Gauge | Counter, tuple[str, ...]]]:
        with self._lock:
            return self._sets.pop((namespace, name), set())


SERIES = _Series()


class _HarnessGauge(Gauge):
    """A Gauge labelled (namespace, name, …) whose series `forget` drops."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], **kw: Any):
        super().__init__(name, documentation, labelnames, **kw)
        self._harness_labels = tuple(labelnames)

    def labels(self, *values: object, **named: object) -> _HarnessGauge:
        child = super().labels(*values, **named)
        SERIES.add(self, self._harness_labels, values, named)
        return child


class _HarnessCounter(Counter):
    """A Counter labelled (namespace, name, …) whose series `forget` drops."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], **kw: Any):
        super().__init__(name, documentation, labelnames, **kw)
        self._harness_labels = tuple(labelnames)

    def labels(self, *values: object, **named: object) -> _HarnessCounter:
        child = super().labels(*values, **named)
        SERIES.add(self, self._harness_labels, values, named)
        return child


CANARY_WEIGHT = _HarnessGauge("harness_canary_weight", "Percent of traffic on the canary.", LABELS)
PHASE = _HarnessGauge(
    "harness_canary_phase", "1 for the HarnessDeployment's current phase.", [*LABELS, "phase"]
)
FAILED_CHECKS = _HarnessGauge(
    "harness_canary_failed_checks", "Failed analysis rounds in the current release.", LABELS
)
ERROR_CHECKS = _HarnessGauge(
    "harness_canary_error_checks", "Consecutive analysis rounds with a query error.", LABELS
)
METRIC_VALUE = _HarnessGauge(
    "harness_canary_metric_value",
    "Last value of each analysis check, per track.",
    [*LABELS, "check", "track"],
)
CHECK_OUTCOME = _HarnessGauge(
    "harness_canary_check_outcome",
    "1 for the last outcome of each analysis check (Pass, Fail, Inconclusive, Error).",
    [*LABELS, "check", "outcome"],
)
PROMOTIONS = _HarnessCounter("harness_canary_promotions", "Releases promoted.", LABELS)
ROLLBACKS = _HarnessCounter(
    "harness_canary_rollbacks", "Releases rolled back, by reason.", [*LABELS, "reason"]
)
RECONCILE_SECONDS = Histogram(
    "harness_operator_reconcile_duration_seconds",
    "Duration of one reconcile pass of a HarnessDeployment.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = _HarnessCounter(
    "harness_operator_reconcile_errors", "Reconcile passes that failed.", LABELS
)

BUDGET_SPENT = Gauge(
    "harness_budget_spent_usd", "Spend in the current budget window.", [*LABELS, "window"]
)
BUDGET_LIMIT = Gauge("harness_budget_limit_usd", "Budget limit of the window.", [*LABELS, "window"])
BUDGET_REMAINING = Gauge(
    "harness_budget_remaining_usd", "Budget left in the current window.", [*LABELS, "window"]
)
BUDGET_HOURS_LEFT = Gauge(
    "harness_budget_hours_to_exhaustion",
    "Hours until the window's budget runs out at the current burn rate (absent when it"
    " does not within the window).",
    [*LABELS, "window"],
)
BUDGET_BURN = Gauge(
    "harness_budget_burn_usd_per_hour", "Current spend rate of the harness.", LABELS
)
BUDGET_STEP = Gauge(
    "harness_budget_step", "1 for the current step of the budget ladder.", [*LABELS, "step"]
)
BUDGET_STEPS = ("Within", "Warning", "PromotionBlocked", "CanaryAborted", "Stopped")

OUTCOMES = ("Pass", "Fail", "Inconclusive", "Error")
_BUDGET_WINDOWS: dict[tuple[str, str], set[str]] = {}
"""The windows each HarnessDeployment's budget gauges were set for (to remove them)."""
_WINDOW_GAUGES = (BUDGET_SPENT, BUDGET_LIMIT, BUDGET_REMAINING, BUDGET_HOURS_LEFT)


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
    record_budget(namespace, name, status.get("budget"))


def record_budget(namespace: str, name: str, budget: Mapping[str, Any] | None) -> None:
    """Mirror `status.budget` into the budget gauges (and drop them without a budget)."""
    forget_budget(namespace, name)
    if not budget:
        return
    for step in BUDGET_STEPS:
        BUDGET_STEP.labels(namespace, name, step).set(1 if budget.get("step") == step else 0)
    if budget.get("burnUsdPerHour") is not None:
        BUDGET_BURN.labels(namespace, name).set(float(budget["burnUsdPerHour"]))
    checked = _time(budget.get("checkedAt"))
    for window in budget.get("windows") or []:
        key = (namespace, name, str(window.get("window")))
        _BUDGET_WINDOWS.setdefault((namespace, name), set()).add(key[2])
        BUDGET_LIMIT.labels(*key).set(float(window.get("limitUsd") or 0))
        if window.get("spentUsd") is not None:
            BUDGET_SPENT.labels(*key).set(float(window["spentUsd"]))
        if window.get("remainingUsd") is not None:
            BUDGET_REMAINING.labels(*key).set(float(window["remainingUsd"]))
        exhausts = _time(window.get("exhaustsAt"))
        if exhausts is not None and checked is not None:
            hours = max((exhausts - checked).total_seconds() / 3600, 0.0)
            BUDGET_HOURS_LEFT.labels(*key).set(hours)


def forget_budget(namespace: str, name: str) -> None:
    for gauge in (
        BUDGET_SPENT,
        BUDGET_LIMIT,
        BUDGET_REMAINING,
        BUDGET_HOURS_LEFT,
        BUDGET_BURN,
        BUDGET_STEP,
    ):
        for labels in [k for k in gauge._metrics if k[:2] == (namespace, name)]:
            with suppress(KeyError):
                gauge.remove(*labels)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def forget(namespace: str, name: str) -> None:
    """Drop every series of a deleted HarnessDeployment: the ones `SERIES` recorded (weight,
    phase, checks, values and outcomes per check, promotions, rollbacks, reconcile errors)
    and its budget gauges."""
    forget_budget(namespace, name)
    for metric, values in SERIES.pop(namespace, name):
        metric.remove(*values)

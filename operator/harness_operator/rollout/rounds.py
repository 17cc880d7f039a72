"""Analysis rounds as the release engine counts them: each round at most once (only rounds
later than `status.lastAnalysis.time`), failures cumulative over the release, errors only
in a row, and the check that explains a rollback."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from harness_operator.api.shape import Shape
from harness_operator.api.spec import HarnessDeploymentSpec
from harness_operator.api.status import (
    AnalysisRecord,
    CheckOutcome,
    CheckRecord,
    HarnessDeploymentStatus,
)
from harness_operator.rollout.model import AnalysisRound

REASON_ANALYSIS_FAILED: Final = "AnalysisFailed"
REASON_ANALYSIS_ERRORS: Final = "AnalysisErrors"


@dataclass(frozen=True)
class Limits:
    """When analysis rolls a release back (from `spec.analysis`)."""

    failure_limit: int
    error_limit: int

    @classmethod
    def of(cls, spec: HarnessDeploymentSpec) -> Limits | None:
        """None when the spec has no analysis: steps then advance on time alone."""
        analysis = spec.analysis_settings
        if analysis is None or spec.shape is Shape.CRON:
            return None  # a cron release is judged by its runs, not by rounds
        return cls(analysis.failure_limit, analysis.error_limit)


@dataclass(frozen=True)
class Tally:
    """The counters after one new round, and the rollback reason if a limit is reached."""

    record: AnalysisRecord
    failed_checks: int
    error_checks: int
    breach: str | None


def outcome_of(value: object) -> CheckOutcome:
    """An outcome given as a string or as a str-valued enum."""
    return CheckOutcome(str(getattr(value, "value", value)))


def record_of(analysis: AnalysisRound) -> AnalysisRecord:
    """The round as stored in `status.lastAnalysis`."""
    raw = dict(analysis.to_status())
    raw["time"] = analysis.at
    raw["outcome"] = outcome_of(analysis.outcome)
    return AnalysisRecord.model_validate(raw)


def tally(analysis: AnalysisRound, status: HarnessDeploymentStatus, limits: Limits) -> Tally | None:
    """Count a round; None when it was counted before."""
    record = record_of(analysis)
    if status.last_analysis is not None and record.time <= status.last_analysis.time:
        return None
    failed = (status.failed_checks or 0) + (record.outcome is CheckOutcome.FAIL)
    errors = (status.error_checks or 0) + 1 if record.outcome is CheckOutcome.ERROR else 0
    breach = None
    if failed >= limits.failure_limit:
        breach = REASON_ANALYSIS_FAILED
    elif errors >= limits.error_limit:
        breach = REASON_ANALYSIS_ERRORS
    return Tally(record, failed, errors, breach)


def culprit(record: AnalysisRecord | None) -> CheckRecord | None:
    """The check that explains a bad round: its first failing check, else its first
    erroring one."""
    if record is None:
        return None
    for outcome in (CheckOutcome.FAIL, CheckOutcome.ERROR):
        found = next((r for r in record.results if r.outcome is outcome), None)
        if found is not None:
            return found
    return None


def _num(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)


def _relative(check: CheckRecord) -> bool:
    return bool((check.model_extra or {}).get("relative"))


def describe_check(check: CheckRecord) -> str:
    """One line naming the check, its value and the threshold it broke."""
    if check.outcome is CheckOutcome.ERROR:
        return f"check {check.name} could not be evaluated: {check.message or 'error'}"
    bounds = []
    if check.min is not None:
        bounds.append(f"min {_num(check.min)}")
    if check.max is not None:
        bounds.append(f"max {_num(check.max)}")
    value, what = check.value, f"check {check.name}"
    if value is not None and _relative(check) and check.stable_value:
        # The bounds of a check relative to stable apply to canary ÷ stable.
        what = f"{what} (canary {_num(value)} / stable {_num(check.stable_value)})"
        value = value / check.stable_value
    if value is None:
        text = f"{what} failed with no value"
    elif check.min is not None and value < check.min:
        text = f"{what} = {_num(value)}, below min {_num(check.min)}"
    elif check.max is not None and value > check.max:
        text = f"{what} = {_num(value)}, above max {_num(check.max)}"
    else:
        within = f" (threshold {', '.join(bounds)})" if bounds else ""
        text = f"{what} = {_num(value)}{within}"
    return f"{text}: {check.message}" if check.message else text

"""How a cron harness's release is judged: by its runs, not by Prometheus.

A cron run is a Job; agent runs are minutes apart at best, so a scrape-based rate says
little about them. What each run says for itself is exact: the Job completed or failed, and
the harness may leave a *run report* in its termination message (a JSON object, the
kubelet's `terminated.message`: `costUsd`, `outputTokens`, `inputTokens`, `tasks`,
`failed`). The new revision's runs since its release started are compared with stable's
last finished runs (the CronJob's history), per run: failures first (fail fast: one over
`maxFailedRuns` rolls back at once), then, once `canaryRuns` have finished, mean cost and
output tokens per run against `maxCostRatio` and `maxOutputTokensRatio` times stable's.

Pure: runs are parsed from Job and Pod objects the caller listed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from harness_operator.analysis.outcome import CheckResult, Outcome, Round
from harness_operator.api.shape import CronSpec
from harness_operator.naming import APP_CONTAINER, LABEL_REVISION, LABEL_TRACK

JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"
RUNS_CHECK: Final = "finished-runs"
FAILED_CHECK: Final = "failed-runs"
COST_CHECK: Final = "cost-per-run"
TOKENS_CHECK: Final = "output-tokens-per-run"


@dataclass(frozen=True)
class RunReport:
    """What a run says it spent. Fields the harness left out are None."""

    cost_usd: float | None = None
    output_tokens: float | None = None
    input_tokens: float | None = None
    tasks: int | None = None
    failed: int | None = None

    @classmethod
    def parse(cls, message: str | None) -> RunReport | None:
        """From a termination message; None when there is none or it is not a JSON object
        (a harness that writes no report, or a crash message)."""
        if not message or not message.strip().startswith("{"):
            return None
        try:
            data = json.loads(message)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return cls(
            cost_usd=_number(data.get("costUsd")),
            output_tokens=_number(data.get("outputTokens")),
            input_tokens=_number(data.get("inputTokens")),
            tasks=_count(data.get("tasks")),
            failed=_count(data.get("failed")),
        )


@dataclass(frozen=True)
class Run:
    """One Job of a cron harness."""

    name: str
    track: str
    revision: str
    started: datetime
    succeeded: bool | None
    """True: Complete; False: Failed; None: still running."""
    report: RunReport | None = None

    @property
    def finished(self) -> bool:
        return self.succeeded is not None


def runs_of(jobs: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> list[Run]:
    """The runs these Jobs are, each with the report of its (last) pod, oldest first."""
    messages: dict[str, str] = {}
    for pod in sorted(pods, key=lambda p: str(p.get("metadata", {}).get("creationTimestamp"))):
        job = (pod.get("metadata", {}).get("labels") or {}).get(JOB_NAME_LABEL)
        message = _termination_message(pod)
        if job and message is not None:
            messages[job] = message
    runs = []
    for job in jobs:
        meta = job.get("metadata") or {}
        labels = meta.get("labels") or {}
        status = job.get("status") or {}
        started = _time(status.get("startTime")) or _time(meta.get("creationTimestamp"))
        if started is None or LABEL_REVISION not in labels:
            continue
        runs.append(
            Run(
                name=str(meta.get("name")),
                track=str(labels.get(LABEL_TRACK, "")),
                revision=str(labels[LABEL_REVISION]),
                started=started,
                succeeded=_finished(status),
                report=RunReport.parse(messages.get(str(meta.get("name")))),
            )
        )
    return sorted(runs, key=lambda r: (r.started, r.name))


def judge_runs(
    runs: list[Run],
    *,
    canary_revision: str,
    stable_revision: str,
    since: datetime,
    cron: CronSpec,
    now: datetime,
) -> Round:
    """The new revision's runs since `since` against stable's last successful ones."""
    # Job times have whole seconds: a run started in the release's first second counts.
    since = since.replace(microsecond=0)
    canary = [
        r
        for r in runs
        if r.revision == canary_revision and r.track == "canary" and r.started >= since
    ]
    finished = [r for r in canary if r.finished]
    failed = [r for r in finished if not r.succeeded]
    baseline = [r for r in runs if r.revision == stable_revision and r.succeeded][
        -cron.successful_runs_history :
    ]
    enough = len(finished) >= cron.canary_runs
    results = [
        _result(
            RUNS_CHECK,
            Outcome.PASS if enough else Outcome.INCONCLUSIVE,
            len(finished),
            None,
            min_=cron.canary_runs,
            message=(
                f"{len(finished)} of {cron.canary_runs} runs of revision {canary_revision}"
                f" finished ({len(canary) - len(finished)} running)"
                + (
                    ""
                    if enough
                    else "; more run on the canary's schedule, or now with harness.dev/run-now"
                )
            ),
        ),
        _result(
            FAILED_CHECK,
            Outcome.FAIL if len(failed) > cron.max_failed_runs else Outcome.PASS,
            len(failed),
            None,
            max_=cron.max_failed_runs,
            message=f"{len(failed)} failed ({', '.join(r.name for r in failed) or 'none'});"
            f" at most {cron.max_failed_runs} allowed",
        ),
    ]
    for name, ratio, field, unit in (
        (COST_CHECK, cron.max_cost_ratio, "cost_usd", "USD"),
        (TOKENS_CHECK, cron.max_output_tokens_ratio, "output_tokens", "output tokens"),
    ):
        if ratio > 0:
            results.append(_compare(name, ratio, field, unit, finished, baseline, enough))
    return Round(at=now, results=tuple(results))


def _compare(
    name: str,
    ratio: float,
    field: str,
    unit: str,
    canary: list[Run],
    baseline: list[Run],
    enough: bool,
) -> CheckResult:
    ours = _values(canary, field)
    theirs = _values(baseline, field)
    mean = sum(ours) / len(ours) if ours else None
    stable = sum(theirs) / len(theirs) if theirs else None
    if not enough:
        return _result(
            name,
            Outcome.INCONCLUSIVE,
            mean,
            stable,
            max_=ratio,
            relative=True,
            message="judged once the runs it needs have finished",
        )
    if not ours and not theirs:
        return _result(
            name,
            Outcome.PASS,
            None,
            None,
            max_=ratio,
            relative=True,
            message=f"no run reports {unit} on either track: judged on success alone",
        )
    if not ours:
        return _result(
            name,
            Outcome.FAIL,
            None,
            stable,
            max_=ratio,
            relative=True,
            message=f"stable's runs report {unit}, the new revision's runs do not",
        )
    if stable is None:
        return _result(
            name,
            Outcome.INCONCLUSIVE,
            mean,
            None,
            max_=ratio,
            relative=True,
            message=f"no finished stable run reports {unit} yet to compare with",
        )
    assert mean is not None
    ok = mean <= ratio * stable
    relation = f"{mean / stable:.2f}x" if stable > 0 else "above zero"
    return _result(
        name,
        Outcome.PASS if ok else Outcome.FAIL,
        mean,
        stable,
        max_=ratio,
        relative=True,
        message=(
            f"mean {unit} per run {mean:.6g} over {len(ours)} runs vs stable's {stable:.6g}"
            f" over {len(theirs)}: {relation} ({'within' if ok else 'over'} {ratio}x)"
        ),
    )


def _values(runs: list[Run], field: str) -> list[float]:
    values = []
    for run in runs:
        value = getattr(run.report, field, None) if run.report is not None else None
        if value is not None:
            values.append(float(value))
    return values


def _result(
    name: str,
    outcome: Outcome,
    value: float | None,
    stable: float | None,
    *,
    min_: float | None = None,
    max_: float | None = None,
    relative: bool = False,
    message: str,
) -> CheckResult:
    return CheckResult(
        name=name,
        outcome=outcome,
        value=None if value is None else float(value),
        stable_value=stable,
        min=None if min_ is None else float(min_),
        max=None if max_ is None else float(max_),
        relative=relative,
        message=message,
    )


def _finished(status: Mapping[str, Any]) -> bool | None:
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return True
        if condition.get("type") == "Failed":
            return False
    return None


def _termination_message(pod: Mapping[str, Any]) -> str | None:
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        if container.get("name") != APP_CONTAINER:
            continue
        for state in ("state", "lastState"):
            terminated = (container.get(state) or {}).get("terminated") or {}
            if terminated.get("message") is not None:
                return str(terminated["message"])
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number == int(number) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

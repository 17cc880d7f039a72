"""`spec.shape` and its sections: how a harness takes work.

- `service` (default): an HTTP API behind Services and an Istio VirtualService; a release
  shifts a share of the *requests* to the canary.
- `worker`: pulls tasks from a queue; no Service and no routing. A release makes the canary a
  share of the *replicas* consuming the same queue (a step's weight is that share), judged on
  each track's task metrics. Scaling on queue depth through the HPA (`autoscaling.metrics`,
  External/Pods) or a KEDA `ScaledObject` (`worker.keda`), which may scale to zero between
  bursts.
- `cron`: runs to completion on `spec.schedule` (a CronJob per track). A release runs the new
  revision on a canary CronJob for its next `cron.canaryRuns` scheduled runs (or at once,
  with the `harness.dev/run-now` annotation) while stable keeps its schedule; the runs'
  outcomes and run reports (success, cost, output tokens per run) decide promotion or
  rollback.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from harness_operator.api.types import ApiModel, FreeForm, cel, model_rules


class Shape(StrEnum):
    """How the harness takes work."""

    SERVICE = "service"
    WORKER = "worker"
    CRON = "cron"


class KedaScaling(ApiModel):
    """A KEDA `ScaledObject` (keda.sh/v1alpha1) for the stable track instead of an HPA: KEDA
    scales it on queue depth, down to zero between bursts. The canary is not KEDA's: during
    a release the operator gives it its share of stable's current replicas, so when KEDA
    scales stable to zero the canary goes too, and the release waits for work."""

    model_config = model_rules(
        cel(
            "!has(self.minReplicaCount) || self.minReplicaCount <= self.maxReplicaCount",
            "worker.keda.minReplicaCount must be at most worker.keda.maxReplicaCount",
            ".minReplicaCount",
        )
    )

    triggers: Annotated[list[FreeForm], Field(min_length=1, max_length=8)]
    """KEDA triggers, passed through (e.g. `{type: rabbitmq, metadata: {...}}`)."""
    min_replica_count: Annotated[int, Field(ge=0, le=10_000)] = 0
    """Replicas when idle; 0 scales to zero between bursts."""
    max_replica_count: Annotated[int, Field(ge=1, le=10_000)]
    """Upper bound."""
    polling_interval: Annotated[int, Field(ge=1, le=3600)] = 30
    """Seconds between KEDA's checks of the triggers."""
    cooldown_period: Annotated[int, Field(ge=0, le=86400)] = 300
    """Seconds after the last active trigger before scaling to `minReplicaCount`."""

    @model_validator(mode="after")
    def _bounds(self) -> KedaScaling:
        if self.min_replica_count > self.max_replica_count:
            raise ValueError(
                "worker.keda.minReplicaCount must be at most worker.keda.maxReplicaCount"
            )
        return self


class WorkerSpec(ApiModel):
    """A queue worker (`shape: worker`)."""

    concurrency: Annotated[int, Field(ge=1, le=1000)] = 4
    """Tasks one pod works on at once (`HARNESS_MAX_CONCURRENCY` in the pods)."""
    max_task_duration_seconds: Annotated[int, Field(ge=1, le=86400)] | None = None
    """Longest task. `terminationGracePeriodSeconds` must be at least this, so a scale-down
    or a rollout never kills a running task."""
    keda: KedaScaling | None = None
    """Scale the stable track with KEDA (needs KEDA installed) instead of `replicas` or
    `autoscaling`."""


SCHEDULE_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|[0-9*/,?LW#A-Za-z-]+( +[0-9*/,?LW#A-Za-z-]+){4})$"
)
"""Five cron fields (minute hour day-of-month month day-of-week) or a macro; the CronJob
controller parses the rest. No `TZ=` prefix: Kubernetes refuses it, `cron.timeZone` says it."""
Schedule = Annotated[str, Field(min_length=1, max_length=128, pattern=SCHEDULE_PATTERN)]
TimeZone = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
]
Ratio = Annotated[float, Field(ge=0, le=100)]


class CronSpec(ApiModel):
    """A scheduled harness (`shape: cron`): each run is a Job whose pod runs the harness to
    completion. A run *fails* when its Job fails (a non-zero exit, or `runTimeoutSeconds`).
    Its *run report* is a JSON object the harness writes to its termination message
    (`/dev/termination-log`): `costUsd`, `outputTokens`, `inputTokens`, `tasks`, `failed`
    (docs/shapes.md); a harness that writes none is judged on success alone."""

    model_config = model_rules(
        cel(
            "!has(self.maxFailedRuns) || self.maxFailedRuns < (has(self.canaryRuns) ?"
            " self.canaryRuns : 2)",
            "cron.maxFailedRuns must be less than cron.canaryRuns (else a revision whose"
            " runs all fail would be promoted)",
            ".maxFailedRuns",
        )
    )

    time_zone: TimeZone | None = None
    """IANA time zone of `spec.schedule`, e.g. `Europe/Berlin` (the controller manager's
    zone, usually UTC, when unset)."""
    starting_deadline_seconds: Annotated[int, Field(ge=10, le=86400)] = 300
    """A run that could not start within this many seconds of its scheduled time is
    skipped (counted as missed, not failed)."""
    run_timeout_seconds: Annotated[int, Field(ge=1, le=604800)] | None = None
    """Longest a run may take (the Job's `activeDeadlineSeconds`); past it the run fails."""
    successful_runs_history: Annotated[int, Field(ge=1, le=100)] = 3
    """Finished successful runs (Jobs) kept per track; they are also stable's baseline."""
    failed_runs_history: Annotated[int, Field(ge=1, le=100)] = 3
    """Finished failed runs (Jobs) kept per track."""
    canary_runs: Annotated[int, Field(ge=1, le=50)] = 2
    """Finished runs of a new revision judged before it is promoted."""
    max_failed_runs: Annotated[int, Field(ge=0, le=50)] = 0
    """Failed runs of a new revision tolerated; one more rolls it back at once."""
    max_cost_ratio: Ratio = 1.25
    """Roll back when the new revision's mean cost per run exceeds stable's (its last
    successful runs) by this factor. 0 turns the check off."""
    max_output_tokens_ratio: Ratio = 1.5
    """Same for output tokens per run. 0 turns the check off."""

    @model_validator(mode="after")
    def _runs(self) -> CronSpec:
        if self.max_failed_runs >= self.canary_runs:
            raise ValueError(
                "cron.maxFailedRuns must be less than cron.canaryRuns (else a revision whose"
                " runs all fail would be promoted)"
            )
        return self

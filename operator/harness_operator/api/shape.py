"""`spec.shape` and its sections: how a harness takes work.

- `service` (default): an HTTP API behind Services and an Istio VirtualService; a release
  shifts a share of the *requests* to the canary.
- `worker`: pulls tasks from a queue; no Service and no routing. A release makes the canary a
  share of the *replicas* consuming the same queue (a step's weight is that share), judged on
  each track's task metrics. Scaling on queue depth through the HPA (`autoscaling.metrics`,
  External/Pods) or a KEDA `ScaledObject` (`worker.keda`), which may scale to zero between
  bursts.
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

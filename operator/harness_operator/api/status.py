"""`status` of a HarnessDeployment: what the operator observed and where a release stands.

All release progress lives here (never only in memory), so a restarted operator continues
exactly where it stopped. The operator is the only writer; these models parse what it wrote
earlier and build what it writes next. Unknown fields are ignored rather than rejected, so
an older status (or one from a newer operator) still parses.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from harness_operator.api.types import ApiModel, LongString, ShortString, list_map

CONDITION_READY = "Ready"
"""The stable track is available and receives the traffic it should."""
CONDITION_PROGRESSING = "Progressing"
"""A release is in flight (True) or the last one ended (False, with the reason)."""
CONDITION_CONFIG_RESOLVED = "ConfigResolved"
"""Every ConfigMap and Secret the spec references exists (False names the missing ones)."""


class StatusModel(ApiModel):
    """Base of the status models: frozen like the spec models, but lenient about fields it
    does not know."""

    model_config = ConfigDict(extra="ignore")


class Phase(StrEnum):
    """Where the HarnessDeployment stands (see `HarnessDeploymentStatus.phase`)."""

    INITIALIZING = "Initializing"
    READY = "Ready"
    PROGRESSING = "Progressing"
    PROMOTING = "Promoting"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    DEGRADED = "Degraded"


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """An observation in the shape of `metav1.Condition`."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    """Condition type, e.g. `Ready`."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """CamelCase reason for the last transition."""
    message: LongString | None = None
    """Human-readable details."""
    last_transition_time: datetime | None = None
    """When `status` last changed."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """`metadata.generation` this condition was computed from."""


class HarnessDeploymentStatus(StatusModel):
    """Observed state of a HarnessDeployment and progress of its release."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """`metadata.generation` of the last reconciled spec."""
    phase: Phase | None = None
    """Where the HarnessDeployment stands. `Initializing`: first reconcile, the stable track
    is not ready yet. `Ready`: at rest, the stable track serves all traffic. `Progressing`: a
    release is in flight and the canary gets `canaryWeight` percent of traffic. `Promoting`:
    the canary passed and the stable track is being updated to its revision. `RolledBack`:
    the last release failed and was undone; stable serves all traffic until the next
    revision. `Failed`: the operator cannot reconcile (e.g. a referenced Secret is missing;
    see conditions). `Degraded`: at rest, but the stable track is not fully available."""
    canary_weight: Annotated[int, Field(ge=0, le=100)] | None = None
    """Percent of traffic routed to the canary track."""
    stable_revision: ShortString | None = None
    """Revision (pod-template hash) the stable track runs."""
    canary_revision: ShortString | None = None
    """Revision the canary track runs or last ran."""
    current_step: Annotated[int, Field(ge=0)] | None = None
    """Index of the current step in the release's weight schedule."""
    failed_checks: Annotated[int, Field(ge=0)] | None = None
    """Failed analysis checks in the current release; it rolls back at the threshold."""
    error_checks: Annotated[int, Field(ge=0)] | None = None
    """Analysis checks that could not be evaluated (e.g. the metrics backend was down)."""
    last_transition_time: datetime | None = None
    """When `phase` last changed."""
    conditions: (
        Annotated[list[Condition], Field(max_length=16, json_schema_extra=list_map("type"))] | None
    ) = None
    """Latest observations, one per type."""

    def condition(self, type_: str) -> Condition | None:
        """The condition of this type, if present."""
        return next((c for c in self.conditions or [] if c.type == type_), None)

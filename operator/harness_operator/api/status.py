"""`status` of a HarnessDeployment: what the operator observed and where a release stands.

All release progress lives here (never only in memory), so a restarted operator continues
exactly where it stopped: the release engine (`harness_operator.rollout`) reads the stored
status, decides, and returns the next one. The operator is the only writer; these models
parse what it wrote earlier and build what it writes next. Unknown fields are ignored rather
than rejected, so an older status (or one from a newer operator) still parses.

Times are stored as RFC 3339 in UTC (`2026-01-02T03:04:05Z`, with fractions of a second when
there are any: the engine compares analysis times exactly, so they are never rounded).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import AfterValidator, ConfigDict, Field

from harness_operator.api.types import (
    AnnotationValue,
    ApiModel,
    FreeForm,
    LongString,
    ShortString,
    list_map,
)

CONDITION_READY = "Ready"
"""The latest revision serves all traffic from an available stable track (False while a
release runs, and after a rollback)."""
CONDITION_PROGRESSING = "Progressing"
"""A release is in flight (True) or the last one ended (False, with the reason)."""
CONDITION_RECONCILING = "Reconciling"
"""kstatus: True while the operator is still converging (a release or rollout runs)."""
CONDITION_STALLED = "Stalled"
"""kstatus: True when the operator cannot go on without a change from outside (a rollback,
a refused credential, a spec that cannot be realised)."""
CONDITION_RELEASED = "Released"
"""The outcome of the latest release: True (`Promoted`, or `Deployed` for a first deploy),
False (`RolledBack`), Unknown while one runs. For CI: `kubectl wait
--for=condition=Released`."""
CONDITION_CREDENTIALS_VALID = "CredentialsValid"
"""The model credential and model id of the current revision passed the preflight check
(True), were refused by the provider (False, the release is held at weight 0), or could not
be checked yet or at all (Unknown; the reason says which)."""
CONDITION_CONFIG_RESOLVED = "ConfigResolved"
"""Every ConfigMap and Secret the spec references exists (False names the missing ones)."""


def _utc(value: datetime) -> datetime:
    """Naive times are taken as UTC; others are converted, so they serialize with `Z`."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]
"""A point in time, kept in UTC."""
Count = Annotated[int, Field(ge=0)]


class StatusModel(ApiModel):
    """Base of the status models: frozen like the spec models, but lenient about fields it
    does not know."""

    model_config = ConfigDict(extra="ignore")


class Phase(StrEnum):
    """Where the HarnessDeployment stands (see `HarnessDeploymentStatus.phase`)."""

    INITIALIZING = "Initializing"
    READY = "Ready"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    DEGRADED = "Degraded"


RELEASE_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING, Phase.FINALISING})
"""Phases in which a release is in flight (the canary track runs pods)."""


class Stage(StrEnum):
    """Where a release in flight stands within its phase (see `HarnessDeploymentStatus.stage`)."""

    PREFLIGHT = "Preflight"
    WAITING_FOR_CANARY = "WaitingForCanary"
    MIRRORING = "Mirroring"
    ANALYSING = "Analysing"
    WAITING_FOR_STABLE = "WaitingForStable"
    STABLE_STALLED = "StableStalled"
    SHIFTING_BACK = "ShiftingBack"


class CheckOutcome(StrEnum):
    """Result of one check, or of a whole analysis round (the worst of its checks)."""

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


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
    last_transition_time: Timestamp | None = None
    """When `status` last changed."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """`metadata.generation` this condition was computed from."""


class CheckRecord(StatusModel):
    """One check of an analysis round. Further fields the analysis reports (e.g.
    `relative`) are kept as they are."""

    model_config = ConfigDict(extra="allow")

    name: ShortString
    """Name of the check."""
    outcome: CheckOutcome
    """Pass, Fail, Inconclusive or Error."""
    value: float | None = None
    """Value measured on the canary (absent when there was none)."""
    stable_value: float | None = None
    """Value measured on the stable track, for checks relative to it."""
    min: float | None = None
    """Lowest passing value, if the check has one."""
    max: float | None = None
    """Highest passing value, if the check has one."""
    message: LongString | None = None
    """Why the check came out as it did (e.g. the query error)."""


class AnalysisRecord(StatusModel):
    """The latest analysis round the release engine took into account."""

    time: Timestamp
    """When the round was evaluated. A round is counted once: only rounds later than this
    one change `failedChecks` or `errorChecks`."""
    outcome: CheckOutcome
    """Outcome of the round: Fail if any check failed, else Error if any could not be
    evaluated, else Inconclusive if any lacked data, else Pass."""
    results: list[CheckRecord] = Field(default_factory=list)
    """Every check of the round, in order."""


class RollbackRecord(StatusModel):
    """Why the last release was rolled back."""

    reason: ShortString
    """`AnalysisFailed` (failureLimit rounds failed), `AnalysisErrors` (errorLimit rounds in
    a row could not be evaluated), `ProgressDeadlineExceeded` (the canary did not become
    ready in time) or `Aborted` (the `harness.dev/abort` annotation)."""
    revision: ShortString | None = None
    """Revision that was rolled back."""
    at: Timestamp
    """When the release was rolled back."""
    check: ShortString | None = None
    """The check that tipped it over: the round's first failing check, else its first
    erroring one."""
    value: float | None = None
    """The check's value on the canary."""
    min: float | None = None
    """The check's lower bound."""
    max: float | None = None
    """The check's upper bound."""
    message: LongString | None = None
    """Human-readable account of the rollback."""


class BudgetStep(StrEnum):
    """Where spend stands on the budget ladder (see `spec.budget`)."""

    WITHIN = "Within"
    WARNING = "Warning"
    PROMOTION_BLOCKED = "PromotionBlocked"
    CANARY_ABORTED = "CanaryAborted"
    STOPPED = "Stopped"


BUDGET_LADDER: Final = tuple(BudgetStep)
"""The steps in escalating order."""


class BudgetWindowStatus(StatusModel):
    """Spend in one budget window."""

    window: ShortString
    """`hour`, `day`, `month` or a duration."""
    limit_usd: float
    """The limit."""
    spent_usd: float | None = None
    """Spent since the window began (None: no cost data)."""
    remaining_usd: float | None = None
    """Limit minus spent (negative when over)."""
    resets_at: Timestamp
    """When the window ends and its spend starts from zero."""
    exhausts_at: Timestamp | None = None
    """When the limit is reached at the current burn rate, if within this window."""


class BudgetStatus(StatusModel):
    """Where spend stands against `spec.budget`."""

    step: BudgetStep
    """The ladder step: the highest reached by any window (or `Stopped` after a provider
    spend-limit error)."""
    reason: LongString | None = None
    """Which window (or provider error) put it there."""
    since: Timestamp | None = None
    """When `step` last changed."""
    checked_at: Timestamp
    """When spend was last read."""
    burn_usd_per_hour: float | None = None
    """Current spend rate over `spec.budget.burnWindow`."""
    lifted_until: Timestamp | None = None
    """`harness.dev/lift-budget` lifted the ladder until then (the current windows' reset)."""
    windows: Annotated[list[BudgetWindowStatus], Field(max_length=8)] = Field(default_factory=list)
    """Per window: spent, limit, remaining, reset, projected exhaustion."""


class HarnessDeploymentStatus(StatusModel):
    """Observed state of a HarnessDeployment and progress of its release."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """`metadata.generation` of the last reconciled spec."""
    phase: Phase | None = None
    """Where the HarnessDeployment stands. `Initializing`: first reconcile, the stable track
    is not ready yet (a first deploy is not analysed). `Ready`: at rest, the stable track
    serves all traffic. `Progressing`: a release is in flight (see `stage`); the canary gets
    `canaryWeight` percent of traffic. `Paused`: a release held by the `harness.dev/pause`
    annotation: the weight stays, analysis and rollback keep running. `Promoting`: the
    canary passed and the stable track is rolling out its revision. `Finalising`: stable
    runs the new revision; traffic moves back to it and the canary scales to zero.
    `RolledBack`: the last release failed and was undone (see `rollback`); stable serves
    all traffic until the next revision or `harness.dev/retry`. `Failed`: the operator
    cannot reconcile (e.g. a referenced Secret is missing; see conditions). `Degraded`: at
    rest, but the stable track is not fully available."""
    stage: Stage | None = None
    """Step within the phase of a release in flight. Progressing/Paused: `Preflight` (the
    new revision's credential and model are being checked, or were refused: no canary pods,
    no traffic; see the `CredentialsValid` condition), `WaitingForCanary`
    (canary pods starting, no traffic), `Mirroring` (a copy of live requests goes to the
    canary), `Analysing` (canary at a step weight, or under a blue/green or A/B test).
    Promoting: `WaitingForStable`, or `StableStalled` (stable missed its progress deadline;
    all traffic is on the canary until stable is ready). Finalising: `ShiftingBack`."""
    message: LongString | None = None
    """Where the release stands, in a sentence."""
    canary_weight: Annotated[int, Field(ge=0, le=100)] | None = None
    """Percent of traffic routed to the canary track."""
    mirror_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    """Percent of the stable track's requests copied to the canary (responses discarded)."""
    canary_match: bool | None = None
    """Whether requests matching `rollout.match` go to the canary (A/B test)."""
    stable_revision: ShortString | None = None
    """Revision (pod-template hash) the stable track runs."""
    stable_model: ShortString | None = None
    """Model of the stable revision, as `provider/name` (`spec.model`)."""
    canary_model: ShortString | None = None
    """Model of the canary revision, as `provider/name`."""
    canary_revision: ShortString | None = None
    """Revision the canary track runs or last ran."""
    current_step: Annotated[int, Field(ge=0)] | None = None
    """Index of the current step in the release's weight schedule (strategy canary)."""
    iterations: Count | None = None
    """Analysis intervals passed so far (strategies blueGreen and abTest)."""
    paused: bool | None = None
    """Whether the release is paused by hand (`harness.dev/pause`)."""
    release_started_at: Timestamp | None = None
    """When the release in flight started (or restarted, on a new revision)."""
    step_started_at: Timestamp | None = None
    """When the current step (stage, or promotion phase) started; step boundaries are
    computed from it, so a restarted operator neither repeats nor skips a step."""
    not_ready_since: Timestamp | None = None
    """Since when the track the release waits for (the canary while Progressing, stable
    while Promoting) has not been ready; the progress deadline counts from here."""
    failed_checks: Count | None = None
    """Failed analysis rounds in the current release (cumulative); it rolls back at
    `analysis.failureLimit`."""
    error_checks: Count | None = None
    """Analysis rounds in a row that could not be evaluated (e.g. the metrics backend was
    down); it rolls back at `analysis.errorLimit`. A round without error resets it."""
    last_analysis: AnalysisRecord | None = None
    """The latest analysis round of the current (or last) release."""
    rollback: RollbackRecord | None = None
    """The last rollback."""
    stable_spec: FreeForm | None = None
    """The spec (as written, camelCase) of the stable revision: what the stable track runs,
    and what a rollback returns to."""
    stable_config_hashes: Annotated[dict[str, ShortString], Field(max_length=256)] | None = None
    """Content hashes of the ConfigMaps and Secrets (`ConfigMap/<name>`, `Secret/<name>`) the
    stable revision was released with. A Secret's is keyed by the Secret's uid, so it does not
    reveal the value to anyone who cannot read the Secret."""
    revision_aliases: Annotated[dict[str, ShortString], Field(max_length=16)] | None = None
    """Revision ids an older operator gave to pods that are unchanged: the id this operator
    computes, to the id the pods keep (so an upgrade neither releases nor restarts them).
    Dropped once the id is no longer in use."""
    consumed_controls: Annotated[dict[str, AnnotationValue], Field(max_length=16)] | None = None
    """Control annotations already acted on (key to value), so that an annotation the
    operator has not removed yet is never acted on twice. An entry is dropped once its
    annotation is gone, so the same value can be used again."""
    release_count: Count | None = None
    """Releases started (a restart on a new revision counts as a new one)."""
    rollback_count: Count | None = None
    """Releases rolled back."""
    budget: BudgetStatus | None = None
    """Spend against `spec.budget` (absent without one)."""
    last_transition_time: Timestamp | None = None
    """When `phase` last changed."""
    conditions: (
        Annotated[list[Condition], Field(max_length=16, json_schema_extra=list_map("type"))] | None
    ) = None
    """Latest observations, one per type."""

    @classmethod
    def from_k8s(cls, raw: Mapping[str, Any] | None) -> HarnessDeploymentStatus:
        """The status as stored on the object (`body["status"]`, possibly absent)."""
        return cls.model_validate(dict(raw or {}))

    def condition(self, type_: str) -> Condition | None:
        """The condition of this type, if present."""
        return next((c for c in self.conditions or [] if c.type == type_), None)

    @property
    def in_release(self) -> bool:
        """Whether a release is in flight."""
        return self.phase in RELEASE_PHASES

"""What the release engine takes in and gives back: observed workloads, the latest analysis
round, and the plan for this tick. Plain frozen data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from harness_operator.api.spec import HarnessDeploymentSpec
from harness_operator.api.status import HarnessDeploymentStatus
from harness_operator.budget.ladder import SpendReading
from harness_operator.naming import LABEL_REVISION
from harness_operator.preflight.verdict import Verdict
from harness_operator.render.state import ReleaseState

NORMAL: Final = "Normal"
WARNING: Final = "Warning"


@dataclass(frozen=True)
class WorkloadState:
    """One track's Deployment as observed at the start of the tick.

    `ready` means the rollout is complete: the Deployment controller has seen the current
    generation, every replica runs the current template and at least `desired` are
    available. `deadline_exceeded` is the Deployment's `Progressing=False` condition with
    reason `ProgressDeadlineExceeded`, counted only when it is about the current generation
    (else it may be left over from the previous template). `revision` is the
    `harness.dev/revision` label of the Deployment's pod template; when known, a track only
    counts as ready on the revision the release expects (this guards against acting on an
    observation taken before the operator's last write reached the Deployment).
    """

    exists: bool = False
    desired: int = 0
    updated: int = 0
    available: int = 0
    ready: bool = False
    deadline_exceeded: bool = False
    revision: str | None = None

    @classmethod
    def from_deployment(cls, deployment: Mapping[str, Any] | None) -> WorkloadState:
        """From a live `apps/v1` Deployment (None when it does not exist)."""
        if deployment is None:
            return cls()
        meta = deployment.get("metadata") or {}
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        desired = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas", 0))
        available = int(status.get("availableReplicas", 0))
        current = int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0))
        ready = (
            current
            and updated >= desired
            and int(status.get("replicas", 0)) <= updated
            and available >= desired
        )
        deadline = current and any(
            c.get("type") == "Progressing"
            and c.get("status") == "False"
            and c.get("reason") == "ProgressDeadlineExceeded"
            for c in status.get("conditions") or []
        )
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        return cls(
            exists=True,
            desired=desired,
            updated=updated,
            available=available,
            ready=ready,
            deadline_exceeded=deadline,
            revision=labels.get(LABEL_REVISION),
        )

    @classmethod
    def from_cronjob(cls, cronjob: Mapping[str, Any] | None) -> WorkloadState:
        """A cron harness's track from its live `batch/v1` CronJob: one "replica" that is
        ready as soon as the CronJob exists (it runs on its schedule; runs are judged
        separately), none while it is suspended."""
        if cronjob is None:
            return cls()
        spec = cronjob.get("spec") or {}
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        scheduled = 0 if spec.get("suspend") else 1
        return cls(
            exists=True,
            desired=scheduled,
            updated=scheduled,
            available=scheduled,
            ready=True,
            revision=labels.get(LABEL_REVISION),
        )

    def runs(self, revision: str | None) -> bool:
        """Whether the track is ready on `revision` (or on whatever it runs, when the
        observed revision is unknown)."""
        return self.exists and self.ready and self.revision in (None, revision)

    def serves(self, revision: str | None) -> bool:
        """Whether the track can take traffic for `revision`: ready on it with at least one
        replica (a Deployment scaled to zero is trivially "ready")."""
        return self.runs(revision) and self.desired > 0 and self.available > 0

    def stuck(self, revision: str | None) -> bool:
        """Whether the Deployment itself gave up on rolling out `revision`."""
        return self.deadline_exceeded and self.revision in (None, revision)


class AnalysisRound(Protocol):
    """What the engine uses of an analysis round (`harness_operator.analysis.Round`):
    when it was evaluated, its outcome (`Pass`, `Fail`, `Inconclusive` or `Error`, as a
    string or a str-valued enum) and its status form `{time, outcome, results: [{name,
    outcome, value, stableValue, min, max, relative, message}]}`."""

    @property
    def at(self) -> datetime: ...

    @property
    def outcome(self) -> object: ...

    def to_status(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Note:
    """An Event to post on the HarnessDeployment: type `Normal` or `Warning`, a CamelCase
    reason and a message."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Inputs:
    """Everything one tick of the release engine depends on."""

    now: datetime
    spec: HarnessDeploymentSpec
    """The current spec: what the canary should run."""
    revision: str
    """`revision(spec, config_hashes)`: the desired revision."""
    config_hashes: Mapping[str, str]
    status: HarnessDeploymentStatus
    """The status as currently stored."""
    stable: WorkloadState
    canary: WorkloadState
    analysis: AnalysisRound | None = None
    """The latest round, evaluated at this tick (see `Plan.analyse`), or None if none was
    run. Rounds not later than `status.lastAnalysis.time` are ignored."""
    controls: Mapping[str, str] = field(default_factory=dict)
    """Control annotations present on the object (`harness.dev/promote`, ...)."""
    credentials: Verdict | None = None
    """The preflight verdict for the current spec's model and credential (None: the spec
    has no model). A verdict that holds keeps a new revision at weight 0 with no canary
    pods, and a first deploy from Ready."""

    spend: SpendReading | None = None
    """Spend read from Prometheus at this tick (None: not due; the stored budget status
    stands). Only with `spec.budget`."""

    @property
    def credentials_hold(self) -> bool:
        return self.credentials is not None and self.credentials.holds


@dataclass(frozen=True)
class Plan:
    """What to do at this tick.

    Order for the caller: when `route_first`, apply the routing for `state` before the
    workloads (traffic moves toward stable: nothing may reach a canary that is about to
    shrink or change), else the workloads first. Save `status`, then remove the annotations
    in `consumed` (they are recorded in `status.consumedControls`, so a crash in between
    does not act on them twice), then post `notes`.
    """

    status: HarnessDeploymentStatus
    """The complete new status."""
    state: ReleaseState
    """What each track runs and how traffic is split, to render now."""
    route_first: bool
    """Traffic moves toward stable (a share to the canary shrinks): routing before
    workloads."""
    analyse: bool
    """The release is in an analysed stage (mirroring, a step, a blue/green or A/B test)
    and `spec.analysis` is set: evaluate the checks and hand the round in as
    `Inputs.analysis` (calling `advance` again with it at this tick is fine: a round counts
    only when the *stored* status is in an analysed stage, see `should_analyse`, and only
    once)."""
    judge_runs: bool = False
    """A cron release judges the new revision's runs: list them and hand the judgement in
    as `Inputs.analysis` (same rules as `analyse`)."""
    run_now: tuple[str, str] | None = None
    """(track, annotation value): start one run of that track's CronJob now."""
    notes: tuple[Note, ...] = ()
    consumed: tuple[str, ...] = ()
    """Control annotation keys to remove once `status` is saved."""

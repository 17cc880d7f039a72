"""What a tick's status means for the outside world: the `ReleaseState` to render, whether
routing goes first, and the human-readable `status.message`. Pure functions of the status
the machine decided on."""

from __future__ import annotations

import math

from harness_operator.api.shape import Shape
from harness_operator.api.spec import HarnessDeploymentSpec, Strategy
from harness_operator.api.status import (
    RELEASE_PHASES,
    BudgetStep,
    HarnessDeploymentStatus,
    Phase,
    Stage,
)
from harness_operator.render.state import ReleaseState
from harness_operator.rollout.model import Inputs
from harness_operator.rollout.rounds import Limits


def canary_replicas(spec: HarnessDeploymentSpec, stable_desired: int, weight: int = 0) -> int:
    """Replicas of the canary during a release. For a service: as many as stable runs, so
    that it can take any share of the traffic (a blue/green switch takes all of it at
    once); with autoscaling this is the starting size, the canary's own HPA takes over from
    there. For a worker: its share `weight` (at least the first step's) of the workers,
    which is zero while KEDA has stable at zero between bursts."""
    if spec.shape is Shape.WORKER:
        workers = stable_desired if _autoscaled(spec) else spec.replicas
        share = max(weight, spec.rollout.weight_schedule()[0])
        return math.ceil(workers * share / 100) if workers > 0 else 0
    if spec.autoscaling is not None:
        return max(spec.autoscaling.min_replicas, stable_desired)
    return max(1, spec.replicas)


def _autoscaled(spec: HarnessDeploymentSpec) -> bool:
    return spec.autoscaling is not None or (
        spec.worker is not None and spec.worker.keda is not None
    )


def release_state(status: HarnessDeploymentStatus, inputs: Inputs) -> ReleaseState:
    """What to render for `status`: stable runs the recorded stable spec (the canary's
    while promoting, the spec itself before the first one is recorded); the canary runs the
    current spec during a release and after a rollback (scaled to zero), else stable's."""
    spec = inputs.spec
    hashes = dict(inputs.config_hashes)
    if status.stable_spec is None or status.phase is Phase.PROMOTING:
        stable_spec, stable_hashes = spec, hashes
    else:
        stable_spec = HarnessDeploymentSpec.model_validate(status.stable_spec)
        stable_hashes = dict(status.stable_config_hashes or {})
    active = status.phase in RELEASE_PHASES
    if active or status.phase is Phase.ROLLED_BACK:
        canary_spec, canary_hashes = spec, hashes
    else:
        canary_spec, canary_hashes = stable_spec, stable_hashes
    return ReleaseState(
        stable_spec=stable_spec,
        canary_spec=canary_spec,
        # No canary pods before the new revision's credential passed the preflight.
        canary_replicas=(
            canary_replicas(spec, inputs.stable.desired, status.canary_weight or 0)
            if active and status.stage is not Stage.PREFLIGHT
            else 0
        ),
        canary_weight=status.canary_weight or 0,
        config_hashes=canary_hashes,
        stable_config_hashes=stable_hashes,
        mirror_percent=status.mirror_percent or 0,
        canary_match=tuple(spec.rollout.http_matches()) if status.canary_match else (),
        revision_aliases=dict(status.revision_aliases or {}),
        stop_spending=(
            spec.budget.stop_action
            if spec.budget is not None
            and status.budget is not None
            and status.budget.step is BudgetStep.STOPPED
            else None
        ),
    )


def toward_stable(before: HarnessDeploymentStatus, after: HarnessDeploymentStatus) -> bool:
    """Whether any share of traffic to the canary shrinks."""
    return (
        (after.canary_weight or 0) < (before.canary_weight or 0)
        or (after.mirror_percent or 0) < (before.mirror_percent or 0)
        or (bool(before.canary_match) and not after.canary_match)
    )


def plan_summary(spec: HarnessDeploymentSpec, analysed: bool) -> str:
    """How a release will go, for the ReleaseStarted event."""
    rollout = spec.rollout
    if spec.shape is Shape.CRON:
        cron = spec.cron_settings
        return (
            f"the new revision runs on a canary CronJob beside stable; {cron.canary_runs}"
            f" finished runs decide (at most {cron.max_failed_runs} failed, cost and output"
            " tokens per run against stable's)"
        )
    if rollout.strategy is Strategy.CANARY:
        weights = ", ".join(f"{w}%" for w in rollout.weight_schedule())
        mirror = f"mirror {rollout.mirror_percent}%, then " if rollout.mirror_percent else ""
        plan = f"canary, {mirror}weights {weights}, each held {rollout.interval}"
    else:
        plan = f"{rollout.strategy}, {rollout.iteration_count} iterations of {rollout.interval}"
    checks = "analysed" if analysed else "no analysis: steps advance on time alone"
    return f"{plan}; {checks}"


def describe(status: HarnessDeploymentStatus, inputs: Inputs, limits: Limits | None) -> str:
    """`status.message`: where things stand, in a sentence."""
    stable, canary, rollout = inputs.stable, inputs.canary, inputs.spec.rollout
    revision = status.canary_revision
    phase, stage = status.phase, status.stage
    held = inputs.credentials if inputs.credentials_hold else None
    if phase is Phase.INITIALIZING and held is not None and stable.runs(inputs.revision):
        return (
            f"first deploy of revision {inputs.revision}: the stable track is up, but the"
            f" model credential has not passed the preflight ({held.reason}: {held.message})"
        )
    if phase is Phase.INITIALIZING:
        return (
            f"first deploy of revision {inputs.revision}: waiting for the stable track"
            f" ({stable.available}/{stable.desired} replicas available)"
        )
    if phase is Phase.READY and inputs.revision != status.stable_revision:
        return (
            f"revision {status.stable_revision} serves all traffic; the release of revision"
            f" {inputs.revision} waits for the spend budget"
        )
    if phase is Phase.READY:
        return f"revision {status.stable_revision} serves all traffic"
    if phase is Phase.DEGRADED:
        return (
            f"revision {status.stable_revision} serves all traffic, but the stable track"
            f" is not fully available ({stable.available}/{stable.desired})"
        )
    if phase is Phase.ROLLED_BACK:
        why = status.rollback.message if status.rollback else "rolled back"
        return (
            f"revision {revision} rolled back: {why}. Stable revision"
            f" {status.stable_revision} serves all traffic; release a new revision or"
            " annotate harness.dev/retry to try again"
        )
    if phase is Phase.PROMOTING and stage is Stage.STABLE_STALLED:
        return (
            f"promoting revision {revision}: the stable track missed its progress"
            f" deadline ({stable.available}/{stable.desired} available); canary weight"
            f" {status.canary_weight or 0}% until it is ready"
        )
    if phase is Phase.PROMOTING:
        return (
            f"promoting revision {revision}: the stable track rolls it out"
            f" ({stable.updated}/{stable.desired} updated,"
            f" {stable.available} available)"
        )
    if phase is Phase.FINALISING:
        return (
            f"revision {revision} promoted: moving traffic back to stable (canary weight"
            f" {status.canary_weight or 0}%)"
        )
    paused = "paused; " if status.paused else ""
    if stage is Stage.PREFLIGHT:
        why = f"{held.reason}: {held.message}" if held is not None else "checking"
        where = f"held before any traffic until the model credential passes preflight ({why})"
    elif stage is Stage.WAITING_FOR_CANARY:
        where = (
            f"waiting for the canary to be ready ({canary.available}/{canary.desired}"
            " replicas available)"
        )
    elif inputs.spec.shape is Shape.CRON:
        runs = next(
            (
                r
                for r in (status.last_analysis.results if status.last_analysis else [])
                if r.name == "finished-runs"
            ),
            None,
        )
        where = "the canary CronJob runs it beside stable: " + (
            runs.message if runs is not None and runs.message else "no run finished yet"
        )
    elif stage is Stage.MIRRORING:
        where = f"mirroring {status.mirror_percent or 0}% of requests to the canary"
    elif rollout.strategy is Strategy.CANARY:
        total = len(rollout.weight_schedule())
        where = (
            f"canary weight {status.canary_weight or 0}% (step"
            f" {(status.current_step or 0) + 1}/{total})"
        )
    else:
        test = "A/B test" if rollout.strategy is Strategy.AB_TEST else "blue/green test"
        where = f"{test}, {status.iterations or 0}/{rollout.iteration_count} iterations"
    analysis = ""
    if limits is not None and status.last_analysis is not None:
        analysis = (
            f"; last analysis {status.last_analysis.outcome}, failed rounds"
            f" {status.failed_checks or 0}/{limits.failure_limit}"
        )
    return f"releasing revision {revision}: {paused}{where}{analysis}"

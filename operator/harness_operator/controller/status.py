"""Conditions of a HarnessDeployment, computed from what was observed (pure).

The release engine decides phase, weights and release progress; this module adds what
`kubectl wait`, GitOps tools and humans read, and turns the result into the smallest merge
patch against the current status (None when nothing changed, so a converged reconcile writes
nothing). Transition times move only on a change.

Two vocabularies side by side:

- the kstatus contract that Flux (and `kstatus`-based tools) read, in this order:
  `observedGeneration` behind `metadata.generation` → in progress; `Reconciling=True` → in
  progress; `Stalled=True` → failed; `Ready=True` → current. So `Reconciling` is True while
  a release (or a first rollout) runs, `Stalled` is True after a rollback, while a release is
  held by a refused credential, and while the spec cannot be realised, and `Ready` is True
  only when the latest revision serves all traffic;
- our own: `Released` (the outcome of the latest release, for CI: True `Promoted`, False
  `RolledBack`, Unknown while one runs), `Progressing`, `Degraded`, `ConfigResolved`,
  `CredentialsValid`, `ModelPinned`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from harness_operator.api import CONDITION_CONFIG_RESOLVED, CONDITION_PROGRESSING, CONDITION_READY
from harness_operator.api.status import (
    CONDITION_CREDENTIALS_VALID,
    CONDITION_RECONCILING,
    CONDITION_RELEASED,
    CONDITION_STALLED,
    RELEASE_PHASES,
    BudgetStep,
    Phase,
)
from harness_operator.preflight import Verdict
from harness_operator.rollout import WorkloadState

__all__ = ["CONDITION_CREDENTIALS_VALID"]

CONDITION_BUDGET = "Budget"
"""Spend against `spec.budget`: True while within it (reason `Within` or `Warning`), False
once promotion is blocked, the canary aborted or spending stopped (the reason says which)."""
CONDITION_MODEL_PINNED = "ModelPinned"
"""False when `spec.model.name` is an alias the provider may re-point (the SDK knows a dated
snapshot of it): allowed, but the model could change without a release."""
CONDITION_DEGRADED = "Degraded"
"""The spec cannot be realised as it stands (reason and message say why); whatever already
runs is left running."""

Obj = dict[str, Any]
Cond = tuple[str, str, str]
"""(status, reason, message)."""


@dataclass(frozen=True)
class Problem:
    """Why a valid spec cannot be realised right now: a CamelCase reason and a message."""

    reason: str
    message: str


@dataclass(frozen=True)
class Observation:
    """Everything the conditions depend on, gathered by the reconciler."""

    generation: int
    problems: tuple[Problem, ...]
    missing_configs: tuple[str, ...]
    stable: WorkloadState
    """The live stable Deployment (after our apply)."""
    credentials: Verdict | None = None
    """The preflight verdict for the spec's model (None without `spec.model`)."""
    model_alias_of: str | None = None
    """The dated snapshot `spec.model.name` is an alias of, if it is one."""

    @property
    def held(self) -> Verdict | None:
        """The verdict, when it keeps the latest revision away from traffic."""
        return self.credentials if self.credentials and self.credentials.holds else None


def with_conditions(seen: Observation, release: Obj, current: Obj, now: datetime) -> Obj:
    """`release` (the engine's status) plus observedGeneration and the conditions. A
    problem overrides the phase with `Failed` when nothing runs yet; a release in flight
    keeps its phase (it is only held)."""
    status = dict(release)
    status["observedGeneration"] = seen.generation
    if seen.problems and status.get("phase") in (None, Phase.INITIALIZING, Phase.FAILED):
        status["phase"] = str(Phase.FAILED)
        status["message"] = "the spec cannot be realised: " + "; ".join(
            p.message for p in seen.problems
        )
    phase = status.get("phase")
    message = str(status.get("message") or phase)
    rollback = status.get("rollback") or {}
    conditions: list[tuple[str, Cond]] = [
        (CONDITION_READY, _ready(seen, phase, message)),
        (CONDITION_RECONCILING, _reconciling(seen, phase, message, _stopped(status))),
        (CONDITION_STALLED, _stalled(seen, phase, rollback, _stopped(status))),
        (CONDITION_RELEASED, _released(seen, status, rollback)),
        (CONDITION_PROGRESSING, _progressing(seen, phase, message)),
        (CONDITION_DEGRADED, _degraded(seen)),
        (CONDITION_CONFIG_RESOLVED, _resolved(seen)),
    ]
    if status.get("budget"):
        conditions.append((CONDITION_BUDGET, _budget(status["budget"])))
    if seen.credentials is not None:
        verdict = seen.credentials
        conditions.append(
            (
                CONDITION_CREDENTIALS_VALID,
                (verdict.condition_status, verdict.reason, verdict.message),
            )
        )
        conditions.append((CONDITION_MODEL_PINNED, _pinned(seen.model_alias_of)))
    status["conditions"] = [
        _condition(current, type_, *cond, seen.generation, now) for type_, cond in conditions
    ]
    if status.get("phase") != current.get("phase") and seen.problems:
        status["lastTransitionTime"] = _timestamp(now)
    return status


def _ready(seen: Observation, phase: object, message: str) -> Cond:
    """True only when the latest revision serves all traffic from an available stable
    track: `kubectl wait --for=condition=Ready` waits for a release to be promoted."""
    stable = seen.stable
    counts = f"{stable.available}/{stable.desired} stable replicas available"
    if seen.problems:
        return ("False", seen.problems[0].reason, "the spec cannot be realised; see Degraded")
    if seen.held is not None and phase in (None, Phase.INITIALIZING):
        return ("False", "CredentialsNotVerified", "the model credential has not passed preflight")
    if phase in RELEASE_PHASES:
        return ("False", "Releasing", message)
    if phase == Phase.ROLLED_BACK:
        return ("False", "RolledBack", message)
    if not stable.exists:
        return ("False", "NotCreated", "the stable Deployment does not exist yet")
    if not stable.ready or phase != Phase.READY:
        return ("False", "StableUnavailable", counts)
    return ("True", "StableAvailable", counts)


def _stopped(status: Obj) -> str | None:
    """Why the budget stopped spending, when it did."""
    budget = status.get("budget") or {}
    if budget.get("step") != BudgetStep.STOPPED:
        return None
    return str(budget.get("reason") or "the budget is exhausted")


def _reconciling(seen: Observation, phase: object, message: str, stopped: str | None) -> Cond:
    """True while the operator is still converging on the spec: a release or a rollout in
    progress. A held or stopped harness is Stalled, not Reconciling (kstatus reads this one
    first)."""
    refused = seen.held is not None and seen.held.condition_status == "False"
    if seen.problems or refused or stopped is not None:
        return ("False", "Stalled", "see Stalled")
    if phase in RELEASE_PHASES:
        return ("True", "Releasing", message)
    if phase in (None, Phase.INITIALIZING) or (phase == Phase.DEGRADED and seen.stable.exists):
        return ("True", "RollingOut", message)
    return ("False", "Reconciled", "nothing is in progress")


def _stalled(seen: Observation, phase: object, rollback: Obj, stopped: str | None) -> Cond:
    """True when the operator cannot go on without a change from outside."""
    if seen.problems:
        return ("True", seen.problems[0].reason, "; ".join(p.message for p in seen.problems))
    held = seen.held
    if held is not None and held.condition_status == "False":
        return ("True", held.reason, f"the model credential was refused: {held.message}")
    if stopped is not None:
        return ("True", "BudgetStopped", f"spending is stopped by the budget: {stopped}")
    if phase == Phase.ROLLED_BACK:
        why = str(rollback.get("message") or "the release was rolled back")
        return ("True", "RolledBack", why)
    return ("False", "NotStalled", "nothing blocks progress")


def _released(seen: Observation, status: Obj, rollback: Obj) -> Cond:
    """The outcome of the latest release (the first deploy counts as one)."""
    phase = status.get("phase")
    if phase in RELEASE_PHASES:
        return ("Unknown", "Releasing", f"releasing revision {status.get('canaryRevision')}")
    if phase == Phase.ROLLED_BACK:
        why = str(rollback.get("message") or "rolled back")
        return ("False", "RolledBack", f"revision {rollback.get('revision')} rolled back: {why}")
    if seen.problems:
        return ("False", "Blocked", "the spec cannot be realised; see Degraded")
    if phase in (Phase.READY, Phase.DEGRADED):
        # The last release's outcome stands while the stable track is short of replicas.
        revision = status.get("stableRevision")
        if status.get("releaseCount"):
            return ("True", "Promoted", f"revision {revision} was promoted and serves all traffic")
        return ("True", "Deployed", f"revision {revision} was deployed and serves all traffic")
    return ("Unknown", "Deploying", "the first deploy is in progress")


def _progressing(seen: Observation, phase: object, message: str) -> Cond:
    if seen.problems:
        return ("False", "Blocked", "waiting for the problem in Degraded to be fixed")
    if phase in RELEASE_PHASES:
        return ("True", str(phase), message)
    if phase == Phase.ROLLED_BACK:
        return ("False", "RolledBack", message)
    if seen.stable.ready:
        return ("False", "Complete", "the stable track runs the latest revision")
    return ("True", "RollingOut", "the stable track is rolling out")


def _budget(budget: Obj) -> Cond:
    """True while spend lets the harness work normally (within, or only warned)."""
    step = str(budget.get("step"))
    healthy = step in (BudgetStep.WITHIN, BudgetStep.WARNING)
    return ("True" if healthy else "False", step, str(budget.get("reason") or step))


def _degraded(seen: Observation) -> Cond:
    if seen.problems:
        return ("True", seen.problems[0].reason, "; ".join(p.message for p in seen.problems))
    return ("False", "AsExpected", "every generated object is applied")


def _resolved(seen: Observation) -> Cond:
    if seen.missing_configs:
        return ("False", "Missing", "missing: " + ", ".join(seen.missing_configs))
    return ("True", "Resolved", "every referenced ConfigMap and Secret exists")


def _pinned(alias_of: str | None) -> Cond:
    if alias_of is None:
        return ("True", "Pinned", "spec.model.name names one model snapshot")
    return (
        "False",
        "ModelAlias",
        f"spec.model.name is an alias of {alias_of}, which the provider may re-point; pin"
        " the snapshot id to release model changes deliberately",
    )


def _condition(
    current: Obj, type_: str, status: str, reason: str, message: str, generation: int, now: datetime
) -> Obj:
    previous = next((c for c in current.get("conditions") or [] if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != status
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": (
            _timestamp(now)
            if changed or previous is None
            else previous.get("lastTransitionTime", _timestamp(now))
        ),
    }


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_patch(current: Obj, desired: Obj) -> Obj | None:
    """JSON merge patch (RFC 7386) turning `current` into `desired`, or None when equal.
    Nested objects are patched key by key, so keys that disappeared are removed (None)."""
    patch: Obj = {}
    for key, value in desired.items():
        before = current.get(key)
        if before == value:
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = status_patch(before, value) or {}
        else:
            patch[key] = value
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch or None


def transitions(current: Obj, desired: Obj) -> list[tuple[str, Obj]]:
    """Conditions whose status changed: (type, new condition), for Events."""
    before = {c.get("type"): c.get("status") for c in current.get("conditions") or []}
    return [
        (c["type"], c)
        for c in desired.get("conditions", [])
        if before.get(c["type"]) != c["status"]
    ]

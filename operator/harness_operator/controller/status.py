"""Status of a HarnessDeployment, computed from what was observed (pure).

`desired_status` builds the whole status every time; `status_patch` turns it into the
smallest merge patch against the current status, or None when nothing changed, so a
converged reconcile writes nothing. Condition transition times move only on a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from harness_operator.api import CONDITION_CONFIG_RESOLVED, CONDITION_PROGRESSING, CONDITION_READY
from harness_operator.api.status import Phase

CONDITION_DEGRADED = "Degraded"
"""The spec cannot be realised as it stands (reason and message say why); whatever already
runs is left running."""

Obj = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """Why a valid spec cannot be realised right now: a CamelCase reason and a message."""

    reason: str
    message: str


@dataclass(frozen=True)
class Observation:
    """Everything the status depends on, gathered by the reconciler."""

    generation: int
    revision: str
    problems: tuple[Problem, ...]
    missing_configs: tuple[str, ...]
    stable: Obj | None
    """The live stable Deployment (after our apply), or None when it does not exist."""
    canary_weight: int = 0


def rollout_complete(deployment: Obj | None) -> bool:
    """The Deployment controller has rolled out the current template and every replica is
    available (the same test `kubectl rollout status` applies)."""
    if deployment is None:
        return False
    meta, spec, status = (
        deployment.get("metadata", {}),
        deployment.get("spec", {}),
        deployment.get("status", {}),
    )
    wanted = int(spec.get("replicas", 1))
    return (
        int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0))
        and int(status.get("updatedReplicas", 0)) >= wanted
        and int(status.get("replicas", 0)) <= int(status.get("updatedReplicas", 0))
        and int(status.get("availableReplicas", 0)) >= wanted
    )


def _available(deployment: Obj | None) -> tuple[int, int]:
    if deployment is None:
        return 0, 0
    wanted = int(deployment.get("spec", {}).get("replicas", 1))
    return int(deployment.get("status", {}).get("availableReplicas", 0)), wanted


def desired_status(seen: Observation, current: Obj, now: datetime) -> Obj:
    """The full status for `seen`; transition times are carried over from `current`."""
    available, wanted = _available(seen.stable)
    complete = rollout_complete(seen.stable)
    ever_ready = bool(current.get("stableRevision"))

    if seen.problems:
        first = seen.problems[0]
        phase = Phase.FAILED
        degraded = ("True", first.reason, "; ".join(p.message for p in seen.problems))
    else:
        degraded = ("False", "AsExpected", "every generated object is applied")
        if complete:
            phase = Phase.READY
        elif seen.stable is not None and ever_ready:
            phase = Phase.PROGRESSING
        else:
            phase = Phase.INITIALIZING

    if complete:
        ready = ("True", "StableAvailable", f"{available}/{wanted} stable replicas available")
    elif seen.stable is None:
        ready = ("False", "NotCreated", "the stable Deployment does not exist yet")
    else:
        ready = ("False", "StableUnavailable", f"{available}/{wanted} stable replicas available")

    if seen.problems:
        progressing = ("False", "Blocked", "waiting for the problem in Degraded to be fixed")
    elif complete:
        progressing = ("False", "Complete", f"revision {seen.revision} is rolled out")
    else:
        progressing = ("True", "RollingOut", f"rolling out revision {seen.revision}")

    if seen.missing_configs:
        resolved = ("False", "Missing", "missing: " + ", ".join(seen.missing_configs))
    else:
        resolved = ("True", "Resolved", "every referenced ConfigMap and Secret exists")

    conditions = [
        _condition(current, CONDITION_READY, *ready, seen.generation, now),
        _condition(current, CONDITION_PROGRESSING, *progressing, seen.generation, now),
        _condition(current, CONDITION_DEGRADED, *degraded, seen.generation, now),
        _condition(current, CONDITION_CONFIG_RESOLVED, *resolved, seen.generation, now),
    ]
    status: Obj = {
        "observedGeneration": seen.generation,
        "phase": str(phase),
        "canaryWeight": seen.canary_weight,
        "conditions": conditions,
        "lastTransitionTime": (
            current.get("lastTransitionTime")
            if current.get("phase") == str(phase)
            else _timestamp(now)
        ),
    }
    if complete and not seen.problems:
        status["stableRevision"] = seen.revision
        status["canaryRevision"] = seen.revision
    else:
        # Keep reporting what last ran well until the new revision is out.
        for key in ("stableRevision", "canaryRevision"):
            if current.get(key):
                status[key] = current[key]
    return status


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
    """Merge patch turning `current` into `desired` for the keys we own; None if equal."""
    patch = {key: value for key, value in desired.items() if current.get(key) != value}
    return patch or None


def transitions(current: Obj, desired: Obj) -> list[tuple[str, Obj]]:
    """Conditions whose status changed: (type, new condition), for Events."""
    before = {c.get("type"): c.get("status") for c in current.get("conditions") or []}
    return [
        (c["type"], c)
        for c in desired.get("conditions", [])
        if before.get(c["type"]) != c["status"]
    ]

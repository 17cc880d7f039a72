"""Conditions of a HarnessDeployment, computed from what was observed (pure).

The release engine decides phase, weights and release progress; this module adds what
`kubectl wait` and humans read — `Ready`, `Progressing`, `Degraded`, `ConfigResolved` — and
turns the result into the smallest merge patch against the current status (None when
nothing changed, so a converged reconcile writes nothing). Transition times move only on a
change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from harness_operator.api import CONDITION_CONFIG_RESOLVED, CONDITION_PROGRESSING, CONDITION_READY
from harness_operator.api.status import CONDITION_CREDENTIALS_VALID, RELEASE_PHASES, Phase

__all__ = ["CONDITION_CREDENTIALS_VALID"]
from harness_operator.preflight import Verdict
from harness_operator.rollout import WorkloadState

CONDITION_MODEL_PINNED = "ModelPinned"
"""False when `spec.model.name` is an alias the provider may re-point (the SDK knows a dated
snapshot of it): allowed, but the model could change without a release."""
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


def with_conditions(seen: Observation, release: Obj, current: Obj, now: datetime) -> Obj:
    """`release` (the engine's status) plus observedGeneration and the four conditions.
    A problem overrides the phase with `Failed`; the release fields are kept as they were."""
    status = dict(release)
    status["observedGeneration"] = seen.generation
    available, wanted = seen.stable.available, seen.stable.desired
    complete = seen.stable.ready
    phase = status.get("phase")

    if seen.problems:
        if phase in (None, str(Phase.INITIALIZING), str(Phase.FAILED)):
            # Nothing runs yet. A release in flight keeps its phase: it is only held.
            status["phase"] = str(Phase.FAILED)
        degraded = (
            "True",
            seen.problems[0].reason,
            "; ".join(p.message for p in seen.problems),
        )
        progressing = ("False", "Blocked", "waiting for the problem in Degraded to be fixed")
    else:
        degraded = ("False", "AsExpected", "every generated object is applied")
        if phase in RELEASE_PHASES:
            progressing = ("True", str(phase), str(status.get("message") or phase))
        elif phase == Phase.ROLLED_BACK:
            progressing = ("False", "RolledBack", str(status.get("message") or "rolled back"))
        elif complete:
            progressing = ("False", "Complete", "the stable track runs the latest revision")
        else:
            progressing = ("True", "RollingOut", "the stable track is rolling out")

    held = seen.credentials if seen.credentials is not None and seen.credentials.holds else None
    if complete and held is not None and phase in (None, str(Phase.INITIALIZING)):
        ready = ("False", "CredentialsNotVerified", "the model credential has not passed preflight")
    elif complete:
        ready = ("True", "StableAvailable", f"{available}/{wanted} stable replicas available")
    elif not seen.stable.exists:
        ready = ("False", "NotCreated", "the stable Deployment does not exist yet")
    else:
        ready = ("False", "StableUnavailable", f"{available}/{wanted} stable replicas available")

    if seen.missing_configs:
        resolved = ("False", "Missing", "missing: " + ", ".join(seen.missing_configs))
    else:
        resolved = ("True", "Resolved", "every referenced ConfigMap and Secret exists")

    status["conditions"] = [
        _condition(current, CONDITION_READY, *ready, seen.generation, now),
        _condition(current, CONDITION_PROGRESSING, *progressing, seen.generation, now),
        _condition(current, CONDITION_DEGRADED, *degraded, seen.generation, now),
        _condition(current, CONDITION_CONFIG_RESOLVED, *resolved, seen.generation, now),
    ]
    if seen.credentials is not None:
        verdict = seen.credentials
        credentials = (verdict.condition_status, verdict.reason, verdict.message)
        status["conditions"].append(
            _condition(current, CONDITION_CREDENTIALS_VALID, *credentials, seen.generation, now)
        )
        if seen.model_alias_of is not None:
            pinned = (
                "False",
                "ModelAlias",
                f"spec.model.name is an alias of {seen.model_alias_of}, which the provider may"
                " re-point; pin the snapshot id to release model changes deliberately",
            )
        else:
            pinned = ("True", "Pinned", "spec.model.name names one model snapshot")
        status["conditions"].append(
            _condition(current, CONDITION_MODEL_PINNED, *pinned, seen.generation, now)
        )
    if status.get("phase") != current.get("phase") and seen.problems:
        status["lastTransitionTime"] = _timestamp(now)
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

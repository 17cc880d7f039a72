"""One reconcile pass of a HarnessDeployment: observe, check, apply what drifted, report.

It reads through the kube adapter, checks that the spec can be realised *before* writing
anything (so a bad spec never leaves half its objects behind, and never disturbs what
already runs), applies only the objects whose live copy lacks what we render, removes
objects that must no longer exist, and returns the status and Events for the caller (the
kopf daemon) to publish. Synchronous: the daemon runs it in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from harness_operator import naming
from harness_operator.api import API_VERSION, KIND, HarnessDeploymentSpec
from harness_operator.controller.status import (
    CONDITION_DEGRADED,
    Observation,
    Problem,
    desired_status,
    status_patch,
    transitions,
)
from harness_operator.kube import FIELD_MANAGER, Kube, Obj, drift
from harness_operator.kube.client import REPLICAS_MANAGER
from harness_operator.render import (
    ConfigRef,
    HarnessRef,
    ObjectKey,
    ReleaseState,
    referenced_configs,
    render,
    revision,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Note:
    """An Event to post on the HarnessDeployment."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Outcome:
    """What one pass did and wants published."""

    writes: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    status: Obj | None = None


def owner_uid(obj: Obj) -> str | None:
    """UID of the object's controller, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owns_replicas(obj: Obj) -> bool:
    """Whether our main field manager owns a Deployment's `spec.replicas`."""
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            return "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    return False


def content_hash(obj: Obj) -> str:
    """Hash of a ConfigMap's or Secret's content: a change makes a new revision."""
    content = {key: obj.get(key) or {} for key in ("data", "binaryData", "stringData")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _describe(key: ObjectKey) -> str:
    return f"{key.kind} {key.name}"


class Reconciler:
    def __init__(self, kube: Kube, clock: Any = None) -> None:
        self.kube = kube
        self.clock = clock or (lambda: datetime.now(UTC))

    def reconcile(self, body: Obj) -> Outcome:
        meta = body["metadata"]
        hd = HarnessRef(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation", 0)),
        )
        current_status: Obj = dict(body.get("status") or {})
        outcome = Outcome()

        problems: list[Problem] = [Problem("InvalidName", p) for p in naming.name_problems(hd.name)]
        try:
            spec = HarnessDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as err:
            problems.append(Problem("InvalidSpec", _validation_message(err)))
            spec = None

        hashes: dict[str, str] = {}
        missing: list[str] = []
        if spec is not None:
            hashes, missing = self._resolve_configs(hd, referenced_configs(spec))
            problems += [
                Problem("MissingReference", f"{ref} does not exist in {hd.namespace}")
                for ref in missing
            ]

        live: dict[ObjectKey, Obj | None] = {}
        stable: Obj | None = None
        rev = current_status.get("stableRevision", "")
        if spec is not None and not any(p.reason == "InvalidName" for p in problems):
            rev = revision(spec, hashes)
            desired = render(hd, spec, ReleaseState.at_rest(spec, hashes))
            for obj in desired.objects:
                key = ObjectKey.of(obj)
                live[key] = self.kube.get(key.api_version, key.kind, key.namespace, key.name)
                found = live[key]
                if found is not None and owner_uid(found) != hd.uid:
                    problems.append(
                        Problem(
                            "Conflict",
                            f"{_describe(key)} already exists and is not owned by this"
                            " HarnessDeployment; rename or delete it",
                        )
                    )
            if not problems:
                minimum = spec.autoscaling.min_replicas if spec.autoscaling else spec.replicas
                self._apply(desired.objects, live, outcome, int(minimum or 1))
                self._remove(desired.absent, hd.uid, outcome)
            stable_key = next(
                (
                    k
                    for k in live
                    if k.kind == "Deployment" and k.name == naming.stable_name(hd.name)
                ),
                None,
            )
            stable = live.get(stable_key) if stable_key else None
        else:
            stable = self.kube.get(
                "apps/v1", "Deployment", hd.namespace, naming.stable_name(hd.name)
            )

        seen = Observation(
            generation=hd.generation,
            revision=rev,
            problems=tuple(problems),
            missing_configs=tuple(missing),
            stable=stable,
        )
        wanted = desired_status(seen, current_status, self.clock())
        outcome.status = status_patch(current_status, wanted)
        outcome.notes += self._transition_notes(current_status, wanted)
        return outcome

    def _resolve_configs(
        self, hd: HarnessRef, refs: list[ConfigRef]
    ) -> tuple[dict[str, str], list[str]]:
        hashes: dict[str, str] = {}
        missing: list[str] = []
        for ref in refs:
            obj = self.kube.get("v1", ref.kind, hd.namespace, ref.name)
            if obj is not None:
                hashes[ref.key] = content_hash(obj)
            elif not ref.optional:
                missing.append(ref.key)
        return hashes, missing

    def _apply(
        self,
        objects: list[Obj],
        live: dict[ObjectKey, Obj | None],
        outcome: Outcome,
        min_replicas: int,
    ) -> None:
        created: list[str] = []
        restored: list[str] = []
        for obj in objects:
            key = ObjectKey.of(obj)
            found = live.get(key)
            paths = ["(missing)"] if found is None else drift(obj, found)
            hpa_owned = key.kind == "Deployment" and "replicas" not in obj["spec"]
            if hpa_owned and found is not None and owns_replicas(found):
                # Hand the count over before we stop applying it, or it resets to 1.
                self._hand_over_replicas(obj, int(found["spec"].get("replicas", min_replicas)))
                outcome.writes.append(f"{_describe(key)} (replicas hand-over)")
                paths = paths or [".spec.replicas (hand-over)"]
            if not paths:
                continue
            live[key] = self.kube.apply(obj)
            outcome.writes.append(_describe(key))
            if hpa_owned and found is None:
                # Start at the HPA's minimum instead of the Deployment default of 1.
                live[key] = self._hand_over_replicas(obj, min_replicas)
            if found is None:
                created.append(_describe(key))
            else:
                restored.append(f"{_describe(key)} ({', '.join(paths[:3])})")
        if created:
            outcome.notes.append(Note("Normal", "Created", "created " + ", ".join(created)))
        if restored:
            outcome.notes.append(Note("Normal", "Updated", "applied " + "; ".join(restored)))

    def _hand_over_replicas(self, obj: Obj, replicas: int) -> Obj:
        meta = obj["metadata"]
        return self.kube.apply(
            {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "spec": {"replicas": replicas},
            },
            manager=REPLICAS_MANAGER,
        )

    def _remove(self, absent: list[ObjectKey], uid: str, outcome: Outcome) -> None:
        for key in absent:
            found = self.kube.get(key.api_version, key.kind, key.namespace, key.name)
            if found is not None and owner_uid(found) == uid:
                self.kube.delete(key.api_version, key.kind, key.namespace, key.name)
                outcome.writes.append(f"delete {_describe(key)}")
                outcome.notes.append(Note("Normal", "Deleted", f"deleted {_describe(key)}"))

    def _transition_notes(self, current: Obj, wanted: Obj) -> list[Note]:
        notes = []
        for type_, cond in transitions(current, wanted):
            if type_ == CONDITION_DEGRADED and cond["status"] == "True":
                notes.append(Note("Warning", cond["reason"], cond["message"]))
            elif type_ == CONDITION_DEGRADED and cond["status"] == "False" and current:
                notes.append(Note("Normal", "Recovered", "the spec can be realised again"))
            elif type_ == "Ready" and cond["status"] == "True":
                notes.append(Note("Normal", "Ready", cond["message"]))
        return notes


def _validation_message(err: ValidationError) -> str:
    parts = []
    for error in err.errors()[:5]:
        where = "spec." + ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


__all__ = ["API_VERSION", "KIND", "Note", "Outcome", "Reconciler", "content_hash", "owner_uid"]

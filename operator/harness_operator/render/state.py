"""Inputs and outputs of the renderer: who owns the objects, what each track runs, and the
desired objects themselves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness_operator.api import API_VERSION, KIND, HarnessDeploymentSpec
from harness_operator.api.budget import StopAction

K8sObject = dict[str, Any]


@dataclass(frozen=True)
class HarnessRef:
    """Identity of the HarnessDeployment that owns the generated objects."""

    name: str
    namespace: str
    uid: str
    generation: int = 0

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> HarnessRef:
        """From a HarnessDeployment object as read from the API (e.g. kopf's `body`)."""
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation") or 0),
        )

    def owner_reference(self) -> dict[str, Any]:
        """Makes the HarnessDeployment the controller of a child, so deleting it deletes the
        child (Kubernetes garbage collection)."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class ReleaseState:
    """What each track runs right now. At rest both tracks run the same spec, the canary has
    no replicas and no traffic; the release engine changes these during a release.

    `config_hashes` maps `ConfigMap/<name>` and `Secret/<name>` (see `ConfigRef.key`) to a
    content hash; they go into the canary's pod template, and into the stable one's unless
    `stable_config_hashes` says what stable runs (so that a config change alone can be
    released as a canary instead of restarting stable pods at once).
    """

    stable_spec: HarnessDeploymentSpec
    canary_spec: HarnessDeploymentSpec
    canary_replicas: int = 0
    canary_weight: int = 0
    config_hashes: Mapping[str, str] = field(default_factory=dict)
    stable_config_hashes: Mapping[str, str] | None = None
    mirror_percent: int = 0
    """Share of requests also copied to the canary (responses discarded); 0 = off."""
    canary_match: tuple[Mapping[str, Any], ...] = ()
    """Istio HTTPMatchRequests whose requests go entirely to the canary (A/B)."""
    stop_spending: StopAction | None = None
    """The budget's last step is reached: `killSwitch` sets the harness's flag,
    `scaleToZero` scales both tracks to zero (None: spend freely)."""
    revision_aliases: Mapping[str, str] = field(default_factory=dict)
    """Computed revision -> the id its pods keep (see `rollout.adopt`): the pods' label."""

    def __post_init__(self) -> None:
        if not 0 <= self.canary_weight <= 100:
            raise ValueError(f"canary_weight must be within 0..100, not {self.canary_weight}")
        if self.canary_replicas < 0:
            raise ValueError(f"canary_replicas must not be negative, not {self.canary_replicas}")

    @classmethod
    def at_rest(
        cls, spec: HarnessDeploymentSpec, config_hashes: Mapping[str, str] | None = None
    ) -> ReleaseState:
        """Both tracks on `spec`, canary scaled to zero with no traffic."""
        return cls(stable_spec=spec, canary_spec=spec, config_hashes=dict(config_hashes or {}))

    @property
    def scaled_to_zero(self) -> bool:
        """Whether a budget stop scales both tracks to zero."""
        return self.stop_spending is StopAction.SCALE_TO_ZERO

    @property
    def canary_active(self) -> bool:
        """Whether the canary track runs pods (a release is in flight)."""
        return self.canary_replicas > 0

    @property
    def stable_hashes(self) -> Mapping[str, str]:
        return (
            self.config_hashes if self.stable_config_hashes is None else self.stable_config_hashes
        )


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Identifies one object: enough for the kube adapter to get or delete it."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: K8sObject) -> ObjectKey:
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])


@dataclass(frozen=True)
class Desired:
    """Everything the operator wants for one HarnessDeployment: objects to apply (in this
    order), and objects it may have created earlier that must now be gone (e.g. the canary
    HPA after a release, or both HPAs when `autoscaling` is removed)."""

    objects: list[K8sObject]
    absent: list[ObjectKey]

    def object_keys(self) -> list[ObjectKey]:
        return [ObjectKey.of(o) for o in self.objects]

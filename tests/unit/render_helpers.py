"""Builders for render tests: a HarnessDeployment identity, specs, and lookups into the
rendered objects."""

from __future__ import annotations

from typing import Any

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.render import HarnessRef, K8sObject, ReleaseState, render

HD = HarnessRef(name="pr-reviewer", namespace="agents", uid="0f4c-uid", generation=4)
IMAGE = "ghcr.io/acme/pr-reviewer:1.4.0"
QUICKSTART: dict[str, Any] = {
    "image": IMAGE,
    "port": 8000,
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    "autoscaling": {"minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70},
    "service": {"port": 80, "hosts": ["pr-reviewer.agents.svc.cluster.local"]},
}


def spec(**fields: Any) -> HarnessDeploymentSpec:
    return HarnessDeploymentSpec.model_validate({"image": IMAGE, **fields})


def quickstart(**overrides: Any) -> HarnessDeploymentSpec:
    return HarnessDeploymentSpec.model_validate({**QUICKSTART, **overrides})


def in_release(
    stable: HarnessDeploymentSpec,
    canary: HarnessDeploymentSpec,
    *,
    replicas: int = 2,
    weight: int = 20,
    config_hashes: dict[str, str] | None = None,
) -> ReleaseState:
    return ReleaseState(
        stable_spec=stable,
        canary_spec=canary,
        canary_replicas=replicas,
        canary_weight=weight,
        config_hashes=config_hashes or {},
    )


def objects_at_rest(s: HarnessDeploymentSpec) -> list[K8sObject]:
    return render(HD, s, ReleaseState.at_rest(s)).objects


def find(objects: list[K8sObject], kind: str, name: str) -> K8sObject:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def app_container(deployment: K8sObject) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)

"""Worker-shaped harnesses, without a cluster: what is rendered (no Service, no routing; a
KEDA ScaledObject), the canary as a share of the replicas, and the field combinations that
are rejected."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.render import ReleaseState, render
from harness_operator.render.state import ObjectKey
from harness_operator.rollout import canary_replicas
from unit.render_helpers import HD, find

WORKER: dict[str, Any] = {
    "image": "ghcr.io/acme/worker:1.0",
    "shape": "worker",
    "replicas": 8,
    "terminationGracePeriodSeconds": 900,
    "worker": {"concurrency": 3, "maxTaskDurationSeconds": 600},
    "rollout": {"steps": [{"weight": 25}, {"weight": 50}]},
}


def worker(**extra: Any) -> HarnessDeploymentSpec:
    return HarnessDeploymentSpec.model_validate({**WORKER, **extra})


def kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {o["kind"] for o in objects}


def test_a_worker_has_no_service_and_no_routing() -> None:
    spec = worker()
    desired = render(HD, spec, ReleaseState.at_rest(spec))
    assert kinds(desired.objects) == {"Deployment", "PodDisruptionBudget"}
    gone = {(k.kind, k.name) for k in desired.absent}
    assert {("Service", "pr-reviewer"), ("VirtualService", "pr-reviewer")} <= gone
    assert ("DestinationRule", "pr-reviewer-canary") in gone
    container = find(desired.objects, "Deployment", "pr-reviewer-stable")["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert {"name": "HARNESS_MAX_CONCURRENCY", "value": "3"} in container["env"]


@pytest.mark.parametrize(
    ("weight", "canary", "stable"),
    [(0, 2, 6), (25, 2, 6), (50, 4, 4)],  # while waiting: the first step's share already
)
def test_the_canary_is_a_share_of_the_workers(weight: int, canary: int, stable: int) -> None:
    spec = worker()
    assert canary_replicas(spec, 8, weight) == canary
    state = ReleaseState(
        stable_spec=spec, canary_spec=spec, canary_replicas=canary, canary_weight=weight
    )
    desired = render(HD, spec, state)
    assert find(desired.objects, "Deployment", "pr-reviewer-canary")["spec"]["replicas"] == canary
    assert find(desired.objects, "Deployment", "pr-reviewer-stable")["spec"]["replicas"] == stable


def test_keda_owns_stable_and_the_canary_follows_it_to_zero() -> None:
    keda = {"minReplicaCount": 0, "maxReplicaCount": 10, "triggers": [{"type": "cron"}]}
    spec = worker(worker={**WORKER["worker"], "keda": keda})
    desired = render(HD, spec, ReleaseState.at_rest(spec))
    scaled = find(desired.objects, "ScaledObject", "pr-reviewer-stable")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "pr-reviewer-stable",
    }
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (0, 10)
    assert "replicas" not in find(desired.objects, "Deployment", "pr-reviewer-stable")["spec"]
    assert "HorizontalPodAutoscaler" not in kinds(desired.objects)
    # KEDA has stable at zero: so is the canary's share; at four, a quarter.
    assert canary_replicas(spec, 0, 25) == 0
    assert canary_replicas(spec, 4, 25) == 1


def test_a_service_never_gets_a_scaled_object() -> None:
    spec = HarnessDeploymentSpec.model_validate({"image": "x:1"})
    desired = render(HD, spec, ReleaseState.at_rest(spec))
    assert ObjectKey("keda.sh/v1alpha1", "ScaledObject", "agents", "pr-reviewer-stable") in (
        desired.absent
    )


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("worker section on a service", {"shape": "service"}, "spec.worker applies only to shape"),
    (
        "blue/green worker",
        {"rollout": {"strategy": "blueGreen"}},
        "gets no traffic to split",
    ),
    ("mirroring worker", {"rollout": {"mirror": True}}, "gets no traffic to split"),
    (
        "hosts on a worker",
        {"service": {"hosts": ["a.example.com"]}},
        "spec.service.hosts and spec.service.gateways apply only to shape service",
    ),
    (
        "keda and autoscaling",
        {
            "worker": {"keda": {"maxReplicaCount": 3, "triggers": [{"type": "cron"}]}},
            "autoscaling": {"maxReplicas": 3},
        },
        "spec.worker.keda and spec.autoscaling: set at most one",
    ),
    (
        "grace shorter than a task",
        {"terminationGracePeriodSeconds": 60},
        "spec.terminationGracePeriodSeconds must be at least spec.worker.maxTaskDurationSeconds",
    ),
    (
        "concurrency set twice",
        {"env": [{"name": "HARNESS_MAX_CONCURRENCY", "value": "9"}]},
        "spec.env HARNESS_MAX_CONCURRENCY collides with spec.worker.concurrency",
    ),
    ("cron with a worker section", {"shape": "cron", "schedule": "@hourly"}, "spec.worker"),
]


@pytest.mark.parametrize(("extra", "message"), [pytest.param(e, m, id=i) for i, e, m in INVALID])
def test_invalid_worker_specs_name_the_field(extra: dict[str, Any], message: str) -> None:
    raw = {**WORKER, **extra}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        HarnessDeploymentSpec.model_validate(raw)
    assert message in str(caught.value)

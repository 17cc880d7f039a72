"""Invalid specs are rejected by the real apiserver, through the generated CRD's schema and
CEL rules, with a message that names the field. Nothing is created for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scenarios import Harnesses, Kubectl

pytestmark = pytest.mark.usefixtures("crds")

BASE: dict[str, Any] = {"image": "ghcr.io/acme/pr-reviewer:1.4.0", "port": 8000}
DROP = object()  # marks a BASE field the case removes

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing image", {"image": DROP}, "spec.image"),
    ("negative replicas", {"replicas": -1}, "spec.replicas"),
    (
        "min above max replicas",
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        "minReplicas must be less than or equal to autoscaling.maxReplicas",
    ),
    ("port out of range", {"port": 70000}, "spec.port"),
    ("port zero", {"port": 0}, "spec.port"),
    ("unknown pull policy", {"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy"),
    ("unknown strategy", {"rollout": {"strategy": "yolo"}}, "spec.rollout.strategy"),
    (
        "falling step weights",
        {"rollout": {"steps": [{"weight": 50}, {"weight": 20}]}},
        "rollout.steps[].weight must be strictly rising",
    ),
    ("step weight above 100", {"rollout": {"steps": [{"weight": 120}]}}, "weight"),
    (
        "steps and stepWeight together",
        {"rollout": {"steps": [{"weight": 10}], "stepWeight": 5}},
        "set either steps or stepWeight/maxWeight",
    ),
    ("malformed interval", {"rollout": {"interval": "soon"}}, "spec.rollout.interval"),
    (
        "preStop delay not below grace period",
        {"preStopDelaySeconds": 60, "terminationGracePeriodSeconds": 30},
        "preStopDelaySeconds must be less than terminationGracePeriodSeconds",
    ),
    (
        "CPU target above 100%",
        {"autoscaling": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 150}},
        "targetCPUUtilizationPercentage",
    ),
    ("malformed quantity", {"resources": {"requests": {"cpu": "lots"}}}, "spec.resources"),
    (
        "env value and valueFrom together",
        {
            "env": [
                {
                    "name": "KEY",
                    "value": "x",
                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                }
            ]
        },
        "set either value or valueFrom",
    ),
    ("bad metrics path", {"metrics": {"path": "metrics"}}, "spec.metrics.path"),
]


@pytest.mark.parametrize(("spec", "field"), [pytest.param(s, f, id=i) for i, s, f in CASES])
def test_the_apiserver_rejects_it_naming_the_field(
    harness: Harnesses, spec: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**BASE, **spec}.items() if v is not DROP}
    err = harness.try_create("bad", body)

    assert err is not None, "the apiserver accepted an invalid spec"
    assert err.status == 422, err.body
    assert field in err.body, err.body


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_accepted_by_the_apiserver(
    path: Path, kubectl: Kubectl, namespace: str
) -> None:
    out = kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=(path.read_text().replace("namespace: agents", f"namespace: {namespace}")),
    )
    assert "created (server dry run)" in out

"""The pydantic models: examples parse, defaults are right, invalid specs are rejected with a
message that names the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from harness_operator.api import (
    CONDITION_READY,
    HarnessDeployment,
    HarnessDeploymentSpec,
    HarnessDeploymentStatus,
    Phase,
    Rollout,
    Strategy,
    parse_duration,
)
from harness_operator.api.resource import HarnessAnalysisTemplate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
IMAGE = "ghcr.io/acme/pr-reviewer:1.4.0"


def spec(**fields: Any) -> HarnessDeploymentSpec:
    return HarnessDeploymentSpec.model_validate({"image": IMAGE, **fields})


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"quickstart.yaml", "full.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_parse(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc.get("kind") == "HarnessAnalysisTemplate":
            template = HarnessAnalysisTemplate.model_validate(doc)
            assert template.spec.checks
            continue
        hd = HarnessDeployment.model_validate(doc)
        assert hd.spec.image
        # What the operator writes back parses to the same thing.
        assert HarnessDeploymentSpec.model_validate(hd.spec.to_k8s()) == hd.spec


def test_quickstart_reads_as_documented() -> None:
    hd = HarnessDeployment.model_validate(
        yaml.safe_load((ROOT / "examples/quickstart.yaml").read_text())
    )
    assert hd.metadata == {"name": "pr-reviewer", "namespace": "agents"}
    assert hd.spec.port == 8000
    assert hd.spec.metrics_port == 8000
    assert hd.spec.autoscaling is not None
    assert hd.spec.autoscaling.target_cpu_utilization_percentage == 70
    assert (hd.spec.autoscaling.min_replicas, hd.spec.autoscaling.max_replicas) == (2, 10)
    assert hd.spec.resources.requests == {"cpu": "250m", "memory": "512Mi"}
    assert hd.spec.service.hosts == ["pr-reviewer.agents.svc.cluster.local"]


def test_defaults() -> None:
    s = spec()
    assert s.port == 8080
    assert s.metrics_port == 8080
    assert s.metrics.path == "/metrics"
    assert s.probes.liveness.path == "/health"
    assert s.probes.readiness.path == "/ready"
    assert s.probes.startup is None
    assert s.replicas == 1
    assert s.autoscaling is None
    assert s.service.port == 80
    assert s.termination_grace_period_seconds == 60
    assert s.pre_stop_delay_seconds == 5
    assert s.disruption_budget.max_unavailable == 1
    assert s.rollout.strategy is Strategy.CANARY
    assert s.rollout.interval == "1m"
    assert s.rollout.progress_deadline_seconds == 600
    assert s.rollout.mirror is False


def test_camel_case_on_the_wire_and_snake_case_in_python() -> None:
    s = spec(preStopDelaySeconds=3, podTemplate={"serviceAccountName": "agent"})
    assert s.pre_stop_delay_seconds == 3
    assert s.pod_template.service_account_name == "agent"
    wire = s.to_k8s()
    assert wire["preStopDelaySeconds"] == 3
    assert wire["podTemplate"] == {"serviceAccountName": "agent"}
    assert "pre_stop_delay_seconds" not in wire


def test_pass_through_fields_survive() -> None:
    s = spec(
        env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        podTemplate={
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data", "subPathExpr": "$(POD)"}],
        },
    )
    wire = s.to_k8s()
    assert wire["env"][0]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert wire["podTemplate"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "data"}
    assert wire["podTemplate"]["volumeMounts"][0]["subPathExpr"] == "$(POD)"


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("missing image", {"image": None}, "image"),
    ("port out of range", {"port": 70000}, "port"),
    ("negative replicas", {"replicas": -1}, "replicas"),
    ("bad pull policy", {"imagePullPolicy": "Sometimes"}, "imagePullPolicy"),
    (
        "min above max replicas",
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
    ),
    (
        "cpu target above 100",
        {"autoscaling": {"maxReplicas": 2, "targetCPUUtilizationPercentage": 150}},
        "targetCPUUtilizationPercentage",
    ),
    (
        "metric type without its source",
        {"autoscaling": {"maxReplicas": 2, "metrics": [{"type": "External"}]}},
        "autoscaling.metrics[]: type Pods needs `pods`, type External needs `external`",
    ),
    (
        "metric type not allowed",
        {"autoscaling": {"maxReplicas": 2, "metrics": [{"type": "Resource", "resource": {}}]}},
        "metrics.0.type",
    ),
    (
        "preStop delay not below grace period",
        {"preStopDelaySeconds": 30, "terminationGracePeriodSeconds": 30},
        "preStopDelaySeconds must be less than terminationGracePeriodSeconds",
    ),
    (
        "falling step weights",
        {"rollout": {"steps": [{"weight": 20}, {"weight": 10}]}},
        "rollout.steps[].weight must be strictly rising",
    ),
    (
        "repeated step weights",
        {"rollout": {"steps": [{"weight": 20}, {"weight": 20}]}},
        "rollout.steps[].weight must be strictly rising",
    ),
    ("step weight above 100", {"rollout": {"steps": [{"weight": 120}]}}, "rollout.steps.0.weight"),
    (
        "steps and stepWeight",
        {"rollout": {"steps": [{"weight": 10}], "stepWeight": 10}},
        "rollout: set either steps or stepWeight/maxWeight, not both",
    ),
    (
        "stepWeight above maxWeight",
        {"rollout": {"stepWeight": 60, "maxWeight": 50}},
        "rollout.stepWeight must be less than or equal to rollout.maxWeight",
    ),
    (
        "steps with blue/green",
        {"rollout": {"strategy": "blueGreen", "stepWeight": 10}},
        "rollout: steps, stepWeight and maxWeight apply only to strategy canary",
    ),
    ("interval not a duration", {"rollout": {"interval": "soon"}}, "rollout.interval"),
    (
        "interval too short",
        {"rollout": {"interval": "500ms"}},
        "rollout.interval must be at least 1s",
    ),
    (
        "mirror percentage without mirror",
        {"rollout": {"mirrorPercentage": 50}},
        "rollout.mirrorPercentage requires rollout.mirror: true",
    ),
    (
        "env value and valueFrom",
        {
            "env": [
                {
                    "name": "A",
                    "value": "x",
                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                }
            ]
        },
        "env[]: set either value or valueFrom, not both",
    ),
    (
        "duplicate env names",
        {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
        "env: duplicate names ['A']",
    ),
    (
        "envFrom with both refs",
        {"envFrom": [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}]},
        "envFrom[]: set exactly one of configMapRef and secretRef",
    ),
    ("bad quantity", {"resources": {"requests": {"cpu": "lots"}}}, "resources.requests.cpu"),
    (
        "bad disruption budget",
        {"disruptionBudget": {"maxUnavailable": "half"}},
        "disruptionBudget.maxUnavailable",
    ),
    ("bad host", {"service": {"hosts": ["Not A Host"]}}, "service.hosts.0"),
    ("bad gateway", {"service": {"gateways": ["a/b/c"]}}, "service.gateways.0"),
    (
        "reserved pod label",
        {"podTemplate": {"labels": {"harness.dev/track": "x"}}},
        "podTemplate.labels: keys under harness.dev/ are reserved for the operator",
    ),
    (
        "reserved volume name",
        {"podTemplate": {"volumes": [{"name": "harness-tmp", "emptyDir": {}}]}},
        "podTemplate.volumes[].name: harness-tmp, harness-model-credentials,"
        " harness-system-prompt, harness-controls are reserved for the operator",
    ),
    (
        "mount of an unknown volume",
        {"podTemplate": {"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}},
        "podTemplate.volumeMounts[].name must name a volume in podTemplate.volumes",
    ),
    ("unknown field (typo)", {"replica": 3}, "replica"),
    ("bad probe path", {"probes": {"liveness": {"path": "health"}}}, "probes.liveness.path"),
]


@pytest.mark.parametrize(
    ("fields", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_specs_are_rejected_naming_the_field(fields: dict[str, Any], message: str) -> None:
    raw = {"image": IMAGE, **fields}
    if raw["image"] is None:
        del raw["image"]
    with pytest.raises(ValidationError) as caught:
        HarnessDeploymentSpec.model_validate(raw)
    assert message in str(caught.value)


def test_wrong_kind_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"expected apiVersion harness\.dev/v1alpha1"):
        HarnessDeployment.model_validate(
            {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"image": IMAGE}}
        )


@pytest.mark.parametrize(
    ("rollout", "weights"),
    [
        ({}, [10, 20, 30, 40, 50]),
        ({"stepWeight": 20}, [20, 40, 50]),
        ({"stepWeight": 60}, [60]),
        ({"stepWeight": 20, "maxWeight": 100}, [20, 40, 60, 80, 100]),
        ({"stepWeight": 30, "maxWeight": 80}, [30, 60, 80]),
        ({"maxWeight": 30}, [10, 20, 30]),
        ({"steps": [{"weight": 5}, {"weight": 50, "pause": "10m"}]}, [5, 50]),
    ],
)
def test_weight_schedule(rollout: dict[str, Any], weights: list[int]) -> None:
    assert Rollout.model_validate(rollout).weight_schedule() == weights


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("1h", 3600)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1d", "m5", "1.5h", "-1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_rollout_interval_seconds() -> None:
    assert spec(rollout={"interval": "2m30s"}).rollout.interval_seconds == 150


def test_status_round_trip_and_leniency() -> None:
    raw = {
        "observedGeneration": 3,
        "phase": "Progressing",
        "canaryWeight": 20,
        "stableRevision": "abc",
        "canaryRevision": "def",
        "currentStep": 1,
        "failedChecks": 0,
        "lastTransitionTime": "2026-01-02T03:04:05Z",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "StableAvailable"},
        ],
        "kopf": {"progress": {}},  # written by older kopf versions: ignored
    }
    status = HarnessDeploymentStatus.model_validate(raw)
    assert status.phase is Phase.PROGRESSING
    assert status.last_transition_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ready = status.condition(CONDITION_READY)
    assert ready is not None
    assert ready.reason == "StableAvailable"
    assert status.condition("Missing") is None
    wire = status.to_k8s()
    assert wire["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert "kopf" not in wire
    assert HarnessDeploymentStatus.model_validate(wire) == status


def test_empty_status_parses() -> None:
    assert HarnessDeploymentStatus.model_validate({}).to_k8s() == {}


def test_a_spec_nested_deeper_than_kubernetes_ever_is_refused_with_its_path() -> None:
    deep: dict[str, Any] = {}
    for _ in range(65):
        deep = {"a": deep}
    with pytest.raises(ValidationError, match=r"spec\.podTemplate\.affinity\.a\.a.*64 levels"):
        HarnessDeploymentSpec.model_validate({"image": "x:1", "podTemplate": {"affinity": deep}})
    ok: dict[str, Any] = {}
    for _ in range(60):
        ok = {"a": ok}
    HarnessDeploymentSpec.model_validate({"image": "x:1", "podTemplate": {"affinity": ok}})

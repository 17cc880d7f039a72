"""HPAs and the PodDisruptionBudget."""

from __future__ import annotations

from harness_operator.render import ReleaseState, render_hpas, render_pdb
from unit.render_helpers import HD, in_release, quickstart, spec


def test_no_hpa_without_autoscaling() -> None:
    s = spec()
    assert render_hpas(HD, s, ReleaseState.at_rest(s)) == []
    assert render_hpas(HD, s, in_release(s, s)) == []


def test_stable_hpa_at_rest() -> None:
    s = quickstart()
    (hpa,) = render_hpas(HD, s, ReleaseState.at_rest(s))
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["name"] == "pr-reviewer-stable"
    assert hpa["spec"] == {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "pr-reviewer-stable",
        },
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            }
        ],
    }


def test_canary_hpa_during_a_release_has_the_same_metrics() -> None:
    s = quickstart()
    stable, canary = render_hpas(HD, s, in_release(s, s))
    assert canary["metadata"]["name"] == "pr-reviewer-canary"
    assert canary["spec"]["scaleTargetRef"]["name"] == "pr-reviewer-canary"
    assert canary["spec"]["metrics"] == stable["spec"]["metrics"]
    assert canary["spec"]["minReplicas"] == stable["spec"]["minReplicas"]


def test_extra_metrics_and_memory() -> None:
    pods_metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "harness_inflight_tasks"},
            "target": {"type": "AverageValue", "averageValue": "4"},
        },
    }
    s = spec(
        autoscaling={
            "maxReplicas": 5,
            "targetMemoryUtilizationPercentage": 80,
            "metrics": [pods_metric],
        }
    )
    (hpa,) = render_hpas(HD, s, ReleaseState.at_rest(s))
    metrics = hpa["spec"]["metrics"]
    assert metrics[0]["resource"]["name"] == "memory"
    assert metrics[1] == pods_metric


def test_default_cpu_target_when_no_metric_is_named() -> None:
    s = spec(autoscaling={"maxReplicas": 5})
    (hpa,) = render_hpas(HD, s, ReleaseState.at_rest(s))
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"][0]["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 80},
    }


def test_pdb() -> None:
    pdb = render_pdb(HD, spec(disruptionBudget={"maxUnavailable": "25%"}))
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["metadata"]["name"] == "pr-reviewer-stable"
    assert pdb["spec"] == {
        "selector": {
            "matchLabels": {"harness.dev/name": "pr-reviewer", "harness.dev/track": "stable"}
        },
        "maxUnavailable": "25%",
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    assert render_pdb(HD, spec())["spec"]["maxUnavailable"] == 1

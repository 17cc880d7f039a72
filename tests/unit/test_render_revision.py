"""Revisions and referenced ConfigMaps/Secrets."""

from __future__ import annotations

from typing import Any

import pytest

from harness_operator.naming import LABEL_REVISION, Track
from harness_operator.render import (
    ConfigRef,
    HarnessRef,
    ReleaseState,
    legacy_revision,
    pod_template,
    referenced_configs,
    revision,
)
from unit.render_helpers import HD, in_release, quickstart, spec


def test_revision_is_short_and_stable() -> None:
    r = revision(quickstart(), {})
    assert len(r) == 10
    assert r == revision(quickstart(), {})
    assert r.isalnum()


def test_explicit_defaults_are_no_change() -> None:
    assert revision(spec(), {}) == revision(spec(port=8080, preStopDelaySeconds=5), {})
    assert revision(spec(), {}) == revision(
        spec(probes={"liveness": {"path": "/health"}}, metrics={"path": "/metrics"}), {}
    )


@pytest.mark.parametrize(
    "change",
    [
        {"image": "ghcr.io/acme/pr-reviewer:1.5.0"},
        {"imagePullPolicy": "Always"},
        {"command": ["x"]},
        {"args": ["--y"]},
        {"env": [{"name": "A", "value": "1"}]},
        {"envFrom": [{"secretRef": {"name": "s"}}]},
        {"resources": {"requests": {"cpu": "1"}}},
        {"port": 9000},
        {"metrics": {"port": 9100}},
        {"probes": {"readiness": {"path": "/ok"}}},
        {"terminationGracePeriodSeconds": 120},
        {"preStopDelaySeconds": 1},
        {"podTemplate": {"labels": {"a": "b"}}},
        {"podTemplate": {"runtimeClassName": "gvisor"}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_revision_changes_with_the_pod_template(change: dict[str, Any]) -> None:
    assert revision(spec(**change), {}) != revision(spec(), {})


@pytest.mark.parametrize(
    "change",
    [
        {"replicas": 5},
        {"autoscaling": {"maxReplicas": 9}},
        {"service": {"port": 8080, "hosts": ["a.example.com"]}},
        {"disruptionBudget": {"maxUnavailable": "50%"}},
        {"rollout": {"stepWeight": 5, "interval": "5m"}},
        {"rollout": {"progressDeadlineSeconds": 900}},
        {
            "analysis": {
                "checks": [{"name": "errors", "builtin": "errorRate", "max": 0.01}],
                "failureLimit": 5,
            }
        },
    ],
    ids=lambda c: next(iter(c)),
)
def test_revision_ignores_fields_outside_the_pod_template(change: dict[str, Any]) -> None:
    assert revision(spec(**change), {}) == revision(spec(), {})


def test_only_the_pod_template_counts() -> None:
    """Every spec section that renders nothing into the pods, edited at once, keeps the
    revision: it is computed from the rendered template, not from a list of fields."""
    edited = spec(
        replicas=7,
        autoscaling={"minReplicas": 2, "maxReplicas": 9},
        service={"port": 81, "hosts": ["x.example.com"], "gateways": ["mesh-gw"]},
        disruptionBudget={"maxUnavailable": "50%"},
        rollout={"strategy": "blueGreen", "iterations": 4, "interval": "2m"},
        analysis={"checks": [{"name": "cost", "builtin": "costPerRequest", "max": 0.5}]},
    )
    assert revision(edited, {}) == revision(spec(), {})


def test_the_label_is_the_revision_on_both_tracks_and_for_any_name() -> None:
    s = quickstart()
    hashes = {"Secret/creds": "aaa"}
    expected = revision(s, hashes)
    other = HarnessRef(name="another", namespace="elsewhere", uid="u2")
    for hd in (HD, other):
        for track in Track:
            template = pod_template(hd, s, track, hashes)
            assert template["metadata"]["labels"][LABEL_REVISION] == expected


def test_stable_and_canary_of_one_spec_share_a_revision() -> None:
    s = spec(image="ghcr.io/acme/pr-reviewer:2.0")
    state: ReleaseState = in_release(s, s)
    stable = pod_template(HD, state.stable_spec, Track.STABLE, {})
    canary = pod_template(HD, state.canary_spec, Track.CANARY, {})
    assert (
        stable["metadata"]["labels"][LABEL_REVISION]
        == (canary["metadata"]["labels"][LABEL_REVISION])
    )


def test_legacy_revision_is_what_operator_0_1_computed() -> None:
    """Pinned from operator 0.1's `revision()`: adoption must recognise ids it stored."""
    assert legacy_revision(quickstart(), {"Secret/a": "x"}) == "bb19bdcd5c"
    assert legacy_revision(quickstart(), {}) != revision(quickstart(), {})


def test_revision_follows_config_content() -> None:
    base = revision(spec(), {"Secret/creds": "aaa"})
    assert base != revision(spec(), {"Secret/creds": "bbb"})
    assert base != revision(spec(), {})
    # Order of the mapping does not matter.
    two = {"Secret/creds": "aaa", "ConfigMap/prompts": "ccc"}
    assert revision(spec(), two) == revision(spec(), dict(reversed(list(two.items()))))


def test_referenced_configs() -> None:
    s = spec(
        env=[
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "prompts", "key": "p"}}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "D",
                "valueFrom": {"secretKeyRef": {"name": "maybe", "key": "k", "optional": True}},
            },
        ],
        envFrom=[{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "creds"}}],
        podTemplate={
            "volumes": [
                {"name": "p", "configMap": {"name": "prompts"}},
                {"name": "t", "secret": {"secretName": "tls", "optional": True}},
                {
                    "name": "all",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "extra"}},
                            {"secret": {"name": "tls"}},
                            {"serviceAccountToken": {"path": "token"}},
                        ]
                    },
                },
                {"name": "scratch", "emptyDir": {}},
            ]
        },
    )
    assert referenced_configs(s) == [
        ConfigRef("ConfigMap", "extra"),
        ConfigRef("ConfigMap", "prompts"),
        ConfigRef("ConfigMap", "settings"),
        ConfigRef("Secret", "creds"),
        ConfigRef("Secret", "maybe", optional=True),
        ConfigRef("Secret", "tls"),  # optional once, required once: required
    ]
    assert ConfigRef("Secret", "creds").key == "Secret/creds"


def test_no_references() -> None:
    assert referenced_configs(quickstart()) == []

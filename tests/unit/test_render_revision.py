"""Revisions and referenced ConfigMaps/Secrets."""

from __future__ import annotations

from typing import Any

import pytest

from harness_operator.render import ConfigRef, referenced_configs, revision
from unit.render_helpers import quickstart, spec


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
    ],
    ids=lambda c: next(iter(c)),
)
def test_revision_ignores_fields_outside_the_pod_template(change: dict[str, Any]) -> None:
    assert revision(spec(**change), {}) == revision(spec(), {})


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

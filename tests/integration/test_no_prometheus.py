"""An operator started without a Prometheus address says so, and a release whose analysis
has no Prometheus to ask is held before any traffic (Degraded and Stalled, reason
NoPrometheus) instead of being rolled back after the canary took traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import localcluster
from scenarios import Harnesses
from testbed import OperatorProcess, canary_weight, eventually

pytestmark = pytest.mark.usefixtures("crds")

ANALYSED: dict[str, Any] = {
    "image": "ghcr.io/acme/agent:1.0",
    "port": 8000,
    "rollout": {"steps": [{"weight": 50}], "interval": "2s"},
    "analysis": {"checks": [{"name": "errors", "builtin": "errorRate", "max": 0.05}]},
}


def test_a_release_without_prometheus_is_held_before_any_traffic(
    testbed: localcluster.State,
    harness: Harnesses,
    apps: Any,
    custom: Any,
    namespace: str,
    tmp_path: Path,
) -> None:
    operator = OperatorProcess(
        testbed.kubeconfig, tmp_path / "operator.log", namespace=namespace, prometheus_url=""
    )
    try:
        assert "no Prometheus configured" in operator.log_path.read_text()
        harness.create("agent", ANALYSED)  # the first deploy is not analysed
        harness.wait_ready("agent")
        stable = harness.get("agent")["status"]["stableRevision"]

        harness.patch_spec("agent", {"image": "ghcr.io/acme/agent:1.1"})
        degraded = harness.wait_for_condition("agent", "Degraded", "True")
        assert degraded["reason"] == "NoPrometheus"
        assert harness.condition("agent", "Stalled")["status"] == "True"
        harness.wait_for_event("agent", "NoPrometheus")
        # Held, resync after resync: no canary pods, no traffic, no rollback.
        count = operator.metric("harness_operator_reconcile_duration_seconds_count")
        eventually(
            lambda: (
                operator.metric("harness_operator_reconcile_duration_seconds_count") > count + 3
            ),
            timeout=20,
        )
        status = harness.get("agent")["status"]
        assert (status["phase"], status["stableRevision"]) == ("Ready", stable)
        assert status.get("rollbackCount") is None
        assert canary_weight(custom, namespace, "agent") == 0
        assert apps.read_namespaced_deployment("agent-canary", namespace).spec.replicas == 0
    finally:
        operator.stop()

"""Spend budgets on the real data path: the reference harness's cost in Prometheus climbs
through a one-minute budget window while a release is in flight. Each step of the ladder
fires in order — warn, block promotion, abort the canary (a rollback, routing first), stop
spending (the kill switch: new tasks get 503, the pods stay ready) — and lifts by itself at
the window's reset, and at once with the `harness.dev/lift-budget` annotation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client

from fakeapi import FakeModelAPI, ModelBehaviour
from meshproxy import MeshProxy, TaskLoad
from podrunner import PodRunner
from scenarios import Harnesses, model_key
from testbed import OperatorProcess, eventually

pytestmark = pytest.mark.usefixtures("crds")

KEY = "sk-test-budget-71c3e9"
IMAGE = "localhost/harness-app:1.0"
LIMIT_USD = 0.6


def spec(api: FakeModelAPI) -> dict[str, Any]:
    return {
        "image": IMAGE,
        "port": 8080,
        "replicas": 2,
        "env": [{"name": "HARNESS_MAX_CONCURRENCY", "value": "8"}],
        "model": {
            "provider": "anthropic",
            "name": "claude-sonnet-4-6",
            "baseURL": api.url,
            "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
        },
        "rollout": {"steps": [{"weight": 10}, {"weight": 50}], "interval": "5m"},
        "analysis": {"harnessChecks": {"enabled": False}},
        "budget": {
            "limits": [{"window": "1m", "usd": LIMIT_USD}],
            "checkInterval": "1s",
            "burnWindow": "10s",
        },
    }


def budget_of(harness: Harnesses) -> dict[str, Any]:
    result: dict[str, Any] = (harness.get("agent").get("status") or {}).get("budget") or {}
    return result


def reset_of(budget: dict[str, Any]) -> float:
    (window,) = budget["windows"]
    return datetime.fromisoformat(window["resetsAt"].replace("Z", "+00:00")).timestamp()


def test_the_ladder_fires_in_order_stops_spending_and_lifts(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    harness_image: str,
    pod_runner: Callable[[dict[str, str]], PodRunner],
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
) -> None:
    model_key(fake_api, core, namespace, KEY)
    fake_api.set_model("claude-sonnet-4-6", ModelBehaviour(output_tokens=400, tool_turns=1))
    runner = pod_runner({IMAGE: harness_image})
    harness.create("agent", spec(fake_api))
    harness.wait_ready("agent", timeout=90)
    runner.wait_for(
        lambda pods: len([p for p in pods if p.ready]) >= 2, timeout=90, what="the containers"
    )

    def read_vs() -> dict[str, Any] | None:
        vs: dict[str, Any] = custom.get_namespaced_custom_object(
            "networking.istio.io", "v1", namespace, "virtualservices", "agent"
        )
        return vs

    # Start right after a window reset, so the whole climb happens in one window.
    first = eventually(lambda: budget_of(harness).get("windows") and budget_of(harness))
    wait = reset_of(first) - time.time()
    eventually(lambda: time.time() > reset_of(first) + 1, timeout=wait + 10, interval=0.2)
    harness.patch_spec("agent", {"env": [{"name": "HARNESS_MAX_CONCURRENCY", "value": "6"}]})
    eventually(lambda: harness.get("agent")["status"].get("canaryWeight") == 10, timeout=60)

    with MeshProxy(read_vs, namespace, "agent", runner) as proxy:
        load = TaskLoad(proxy.url, rate=4.0, concurrency=16, max_seconds=200).start()
        try:
            steps: list[str] = []

            def climbed() -> bool:
                step = budget_of(harness).get("step")
                if step and (not steps or steps[-1] != step):
                    steps.append(step)
                return step == "Stopped"

            eventually(climbed, timeout=60, interval=0.1, what="the budget to stop spending")
            assert steps == ["Within", "Warning", "PromotionBlocked", "CanaryAborted", "Stopped"]
            status = harness.get("agent")["status"]
            assert status["phase"] == "RolledBack"
            assert status["rollback"]["reason"] == "BudgetExceeded"
            assert harness.condition("agent", "Budget")["status"] == "False"
            assert harness.condition("agent", "Stalled")["reason"] == "BudgetStopped"

            # The kill switch: new tasks are refused, the pods stay ready.
            refused = load.outcomes[503]
            eventually(lambda: load.outcomes[503] > refused + 5, timeout=20, what="503s")
            assert all(p.ready for p in runner.pods() if p.track == "stable")

            # It lifts by itself when the window resets.
            stopped = budget_of(harness)
            eventually(
                lambda: budget_of(harness).get("step") == "Within",
                timeout=reset_of(stopped) - time.time() + 15,
                what="the reset to lift it",
            )
            answered = load.outcomes[200]
            eventually(lambda: load.outcomes[200] > answered + 3, timeout=20, what="tasks again")

            # And at once with the annotation, when it climbs again.
            load.set_rate(10.0)
            eventually(
                lambda: budget_of(harness).get("step") == "Stopped",
                timeout=60,
                what="the second climb",
            )
            custom.patch_namespaced_custom_object(
                "harness.dev",
                "v1alpha1",
                namespace,
                "harnessdeployments",
                "agent",
                {"metadata": {"annotations": {"harness.dev/lift-budget": "true"}}},
            )
            lifted = eventually(
                lambda: (b := budget_of(harness)).get("step") == "Within" and b,
                timeout=15,
                what="the lift",
            )
            assert lifted["liftedUntil"]
            harness.wait_for_event("agent", "BudgetWithin")
        finally:
            load.stop()

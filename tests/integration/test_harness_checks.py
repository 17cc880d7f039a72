"""The default harness checks on the real data path: the reference harness in containers,
the fake model API, Prometheus scraping each pod, traffic through the mesh stand-in.

- a canary whose cost per task doubles is rolled back on cost, while a rate-limit storm on
  both tracks is not blamed on it;
- a canary that alone draws 529s is rolled back on upstream errors;
- too few finished tasks hold the step (no promotion, no rollback);
- cost computed from tokens x spec.model.pricing matches the harness's own cost counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from fakeapi import FakeModelAPI, ModelBehaviour
from meshproxy import MeshProxy, TaskLoad
from podrunner import PodRunner
from scenarios import Harnesses, model_key
from testbed import OperatorProcess, Prometheus, eventually

pytestmark = pytest.mark.usefixtures("crds")

SONNET, OPUS, SONNET_45 = "claude-sonnet-4-6", "claude-opus-4-6", "claude-sonnet-4-5-20250929"
KEY = "sk-test-checks-4f8a2c"
IMAGE = "localhost/harness-app:1.0"
PRICES = {"input": 3.0, "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75}


def model(api: FakeModelAPI, name: str = SONNET) -> dict[str, Any]:
    return {
        "provider": "anthropic",
        "name": name,
        "baseURL": api.url,
        "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
    }


def spec(api: FakeModelAPI, *, min_tasks: int = 5, interval: str = "15s") -> dict[str, Any]:
    return {
        "image": IMAGE,
        "port": 8080,
        "replicas": 2,
        "env": [{"name": "HARNESS_MAX_CONCURRENCY", "value": "8"}],
        "model": model(api),
        "rollout": {"steps": [{"weight": 50}], "interval": interval, "progressDeadlineSeconds": 90},
        "analysis": {
            "window": "15s",
            "checkInterval": "1s",
            "failureLimit": 2,
            "minTasks": min_tasks,
            # A p95 over a handful of tasks is the fresh canary's cold start: left out here,
            # where the verdicts under test are cost and upstream errors.
            "harnessChecks": {"disabled": ["task-latency-p95", "time-to-first-token-p95"]},
        },
    }


@dataclass
class Rig:
    """A harness serving tasks through the mesh, on the real data path."""

    harness: Harnesses
    api: FakeModelAPI
    runner: PodRunner
    load: TaskLoad

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.harness.get("agent").get("status") or {}
        return result

    def release(self, name: str) -> str:
        before = self.status()["stableRevision"]
        self.harness.patch_spec("agent", {"model": model(self.api, name)})
        return str(before)

    def outcome(self, before: str, timeout: float = 120) -> dict[str, Any]:
        return eventually(
            lambda: (
                (s := self.status()).get("canaryRevision") != before
                and s.get("phase") in ("Ready", "RolledBack")
                and s
            ),
            timeout=timeout,
            what="the release to end",
        )


@pytest.fixture
def rig(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    harness_image: str,
    pod_runner: Callable[[dict[str, str]], PodRunner],
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    request: pytest.FixtureRequest,
) -> Iterator[Rig]:
    model_key(fake_api, core, namespace, KEY)
    for name in (SONNET, OPUS, SONNET_45):
        fake_api.set_model(name, ModelBehaviour(output_tokens=200, tool_turns=1))
    runner = pod_runner({IMAGE: harness_image})
    marker = request.node.get_closest_marker("harness_spec")
    harness.create("agent", marker.args[0](fake_api) if marker else spec(fake_api))
    harness.wait_ready("agent", timeout=90)
    runner.wait_for(
        lambda pods: len([p for p in pods if p.ready and p.track == "stable"]) >= 2,
        timeout=90,
        what="the stable containers",
    )

    def read_vs() -> dict[str, Any] | None:
        try:
            vs: dict[str, Any] = custom.get_namespaced_custom_object(
                "networking.istio.io", "v1", namespace, "virtualservices", "agent"
            )
        except client.ApiException:
            return None
        return vs

    with MeshProxy(read_vs, namespace, "agent", runner) as proxy:
        load = TaskLoad(proxy.url, rate=8.0, concurrency=16, max_seconds=240).start()
        try:
            eventually(lambda: load.outcomes[200] >= 20, timeout=60, what="tasks flowing")
            yield Rig(harness, fake_api, runner, load)
        finally:
            load.stop()


def test_doubled_cost_is_rolled_back_and_a_storm_on_both_tracks_is_not_blamed(
    rig: Rig, prometheus: Prometheus, namespace: str
) -> None:
    # A 429 storm on both models: the harness retries, and the tracks see it alike. It is
    # under way (a full analysis window) when the release starts, as a provider's storm
    # would be.
    storm = ModelBehaviour(output_tokens=200, tool_turns=1, error_rate=0.3, error_status=429)
    rig.api.set_model(SONNET, storm)
    rig.api.set_model(OPUS, storm)
    sel = f'namespace="{namespace}",harness="agent",track="stable"'
    share = (
        f'sum(rate(harness_llm_errors_total{{{sel},error_class="rate_limit"}}[15s]))'
        f" / sum(rate(harness_llm_requests_total{{{sel}}}[15s]))"
    )
    eventually(
        lambda: (v := prometheus.scalar(share)) is not None and v > 0.2,
        timeout=60,
        what="the storm on the stable track",
    )
    before = rig.release(OPUS)  # 5/25 USD per MTok against 3/15: cost per task x1.67
    status = rig.outcome(before)
    assert status["phase"] == "RolledBack"
    assert status["rollback"]["check"] == "cost-per-task", status["rollback"]
    results = {r["name"]: r for r in status["lastAnalysis"]["results"]}
    assert results["upstream-errors"]["outcome"] != "Fail", "the storm was blamed on the canary"
    assert results["task-error-rate"]["outcome"] != "Fail"
    rate_limited = [r for r in rig.api.requests() if r.status == 429]
    assert len(rate_limited) > 20, "there was a storm"


def test_a_canary_that_alone_draws_529s_is_rolled_back(rig: Rig) -> None:
    # Same price family, so cost does not tell them apart: only the 529s do.
    rig.api.set_model(
        SONNET_45, ModelBehaviour(output_tokens=200, tool_turns=1, error_rate=0.5, error_status=529)
    )
    before = rig.release(SONNET_45)
    status = rig.outcome(before)
    assert status["phase"] == "RolledBack"
    assert status["rollback"]["check"] == "upstream-errors", status["rollback"]
    # The 529s' retries make the canary's tasks slower, not costlier: counted per finished
    # task, its cost matches stable's.
    results = {r["name"]: r for r in status["lastAnalysis"]["results"]}
    assert results["cost-per-task"]["outcome"] != "Fail", results["cost-per-task"]


def slow_schedule(api: FakeModelAPI) -> dict[str, Any]:
    return spec(api, min_tasks=100_000, interval="3s")


@pytest.mark.harness_spec.with_args(slow_schedule)
def test_too_few_finished_tasks_hold_the_step(rig: Rig) -> None:
    before = rig.release(SONNET_45)
    started = eventually(
        lambda: (s := rig.status()).get("canaryWeight") == 50 and s, timeout=60, what="step 1"
    )
    step_started = started["stepStartedAt"]
    # Several intervals (3 s) and many check rounds later: still on the same step.
    eventually(
        lambda: (rig.status().get("lastAnalysis") or {}).get("outcome") == "Inconclusive",
        timeout=30,
        what="an inconclusive round",
    )
    count = rig.load.outcomes[200]
    eventually(lambda: rig.load.outcomes[200] > count + 60, timeout=60, what="more tasks")
    status = rig.status()
    assert (status["phase"], status["canaryWeight"], status["stepStartedAt"]) == (
        "Progressing",
        50,
        step_started,
    )
    assert status["canaryRevision"] != before
    assert status.get("failedChecks", 0) == 0
    messages = " ".join(r.get("message", "") for r in status["lastAnalysis"]["results"])
    assert "needs at least 100000" in messages


def priced(api: FakeModelAPI) -> dict[str, Any]:
    body = spec(api)
    body["model"]["pricing"] = PRICES
    return body


@pytest.mark.harness_spec.with_args(priced)
def test_cost_from_tokens_times_prices_matches_the_harness_counter(
    rig: Rig, prometheus: Prometheus, namespace: str
) -> None:
    sel = f'namespace="{namespace}",harness="agent",track="stable"'
    counter = f"sum(increase(harness_cost_usd_total{{{sel}}}[1m]))"
    tokens = " + ".join(
        f'sum(increase(harness_tokens_total{{{sel},type="{kind}"}}[1m])) * {price / 1e6!r}'
        for kind, price in (
            ("input", PRICES["input"]),
            ("output", PRICES["output"]),
        )
    )
    pair = eventually(
        lambda: (c := prometheus.scalar(counter)) and (t := prometheus.scalar(tokens)) and (c, t),
        timeout=60,
        what="cost and tokens in Prometheus",
    )
    assert pair[0] == pytest.approx(pair[1], rel=0.02)

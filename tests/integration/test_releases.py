"""Release scenarios, end to end: the operator (its console script) on the local cluster, the
traffic simulator following the real VirtualService, the real Prometheus scraping it.

Each test reads as the docs do: given a HarnessDeployment serving traffic, when a new
revision goes out (and the canary behaves some way), then the release does what it should.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client

import localcluster
from harness_operator.rollout import (
    REASON_ABORTED,
    REASON_ANALYSIS_ERRORS,
    REASON_PROGRESS_DEADLINE,
)
from scenarios import Releases, release_spec
from testbed import OperatorProcess, audit_writes, epoch, eventually, stays

Given = Callable[[str], Releases]
V1, V2, V3 = "ghcr.io/acme/agent:1.0", "ghcr.io/acme/agent:1.1", "ghcr.io/acme/agent:1.2"


def plugin(*args: str, kubeconfig: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "kubectl-harness"
    return subprocess.run(
        [str(exe), "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def canary_image(apps: client.AppsV1Api, namespace: str, name: str) -> str:
    dep = apps.read_namespaced_deployment(f"{name}-canary", namespace)
    return str(dep.spec.template.spec.containers[0].image)


def stable_image(apps: client.AppsV1Api, namespace: str, name: str) -> str:
    dep = apps.read_namespaced_deployment(f"{name}-stable", namespace)
    return str(dep.spec.template.spec.containers[0].image)


def test_a_healthy_canary_is_promoted_through_every_step(
    releases: Given, apps: client.AppsV1Api, namespace: str
) -> None:
    agent = releases("agent").deployed(release_spec(V1))
    before = agent.status()["stableRevision"]

    agent.new_image(V2)

    status = agent.wait_for_phase("Ready", release_of=before, timeout=120)
    assert status["stableRevision"] != before
    assert status["stableRevision"] == status["canaryRevision"]
    seen = [w for w in agent.weights if w]
    assert [w for w in (20, 50, 80) if w in seen] == [20, 50, 80], agent.weights
    assert agent.weights[-1] == 0, "traffic back on stable after promotion"
    assert stable_image(apps, namespace, "agent") == V2
    eventually(
        lambda: apps.read_namespaced_deployment("agent-canary", namespace).spec.replicas == 0,
        timeout=20,
        what="the canary to scale to zero",
    )
    assert status["lastAnalysis"]["outcome"] == "Pass"
    counts = agent.sim.counts()
    assert counts["canary"] > 0, "the canary really served traffic"


def test_an_error_rate_breach_rolls_back_routing_first(
    releases: Given,
    apps: client.AppsV1Api,
    namespace: str,
    testbed: localcluster.State,
) -> None:
    agent = releases("agent").deployed(release_spec(V1, steps=(20, 40, 60), interval="30s"))
    agent.canary_behaves(error_rate=0.4)
    since = time.time()

    agent.new_image(V2)

    status = agent.wait_for_phase("RolledBack", timeout=90)
    rollback = status["rollback"]
    assert rollback["check"] == "error-rate"
    assert rollback["value"] > 0.05
    assert rollback["max"] == 0.05
    assert agent.canary_weight() == 0
    assert stable_image(apps, namespace, "agent") == V1, "stable never saw the bad revision"
    eventually(
        lambda: apps.read_namespaced_deployment("agent-canary", namespace).spec.replicas == 0,
        timeout=20,
        what="the canary to scale to zero",
    )
    # Order: the VirtualService went to 100 % stable before the canary scaled down.
    writes = [
        w
        for w in audit_writes(testbed.audit_log, namespace, since)
        if w["verb"] == "patch"
        and (w["objectRef"].get("resource"), w["objectRef"].get("name"))
        in {("virtualservices", "agent"), ("deployments", "agent-canary")}
    ]
    last_vs = max(
        i for i, w in enumerate(writes) if w["objectRef"]["resource"] == "virtualservices"
    )
    last_canary = max(
        i for i, w in enumerate(writes) if w["objectRef"]["resource"] == "deployments"
    )
    assert last_vs < last_canary, [w["objectRef"] for w in writes]
    event = next(e for e in agent.harness.events("agent") if e["reason"] == "RolledBack")
    assert event["type"] == "Warning"
    assert "error-rate" in event["message"]


def test_a_latency_breach_rolls_back(releases: Given) -> None:
    agent = releases("agent").deployed(release_spec(V1, interval="30s"))
    agent.canary_behaves(latency_p95=3.0)

    agent.new_image(V2)

    status = agent.wait_for_phase("RolledBack", timeout=90)
    assert status["rollback"]["check"] == "latency"
    assert status["rollback"]["value"] > 2.0, "canary ÷ stable p95, far above the 2.0 allowed"


def test_a_cost_breach_rolls_back(releases: Given) -> None:
    agent = releases("agent").deployed(release_spec(V1, interval="30s"))
    agent.canary_behaves(cost_per_request=0.01)  # 5x the stable cost

    agent.new_image(V2)

    status = agent.wait_for_phase("RolledBack", timeout=90)
    assert status["rollback"]["check"] == "cost"


def test_with_prometheus_down_it_never_promotes_and_rolls_back_at_the_error_limit(
    releases: Given,
) -> None:
    spec = release_spec(V1, interval="3s")
    spec["analysis"]["prometheus"] = {"address": "http://127.0.0.1:9", "timeoutSeconds": 1}
    agent = releases("agent").deployed(spec)
    before = agent.status()["stableRevision"]

    agent.new_image(V2)

    agent.wait_for_release_start(before)
    status = agent.wait_for_phase("RolledBack", "Ready", timeout=90)
    assert status["phase"] == "RolledBack", "query errors must never count as passes"
    assert status["rollback"]["reason"] == REASON_ANALYSIS_ERRORS
    assert max(agent.weights) <= 20, "never went past the first step"


def test_with_no_canary_traffic_it_holds_and_never_promotes(releases: Given) -> None:
    interval = 2.0
    agent = releases("agent").deployed(release_spec(V1, interval=f"{interval:.0f}s"))
    agent.sim.set_silent("canary")
    before = agent.status()["stableRevision"]

    agent.new_image(V2)

    agent.wait_for_release_start(before)
    eventually(lambda: agent.canary_weight() == 20, timeout=30, what="the first step")
    watched_from = time.time()
    held = stays(
        lambda: (
            (s := agent.status())["phase"],
            s.get("currentStep", 0),
            s["stableRevision"],
            agent.canary_weight(),
        ),
        until=watched_from + 5 * interval,  # five intervals: one would move a passing canary
        what="the held release",
    )
    assert held == ("Progressing", 0, before, 20)
    analysis = agent.status()["lastAnalysis"]
    assert analysis["outcome"] == "Inconclusive"
    assert epoch(analysis["time"]) >= watched_from + 4 * interval, "rounds kept running"


def test_nan_follows_the_checks_no_data_policy(releases: Given) -> None:
    spec = release_spec(V1, interval="2s")
    spec["analysis"]["checks"] = [
        {
            "name": "tokens",
            "query": 'sum(rate(harness_tokens_total{namespace="{{namespace}}",'
            'harness="{{name}}",track="{{track}}",type="output"}[{{window}}]))'
            ' / sum(rate(harness_requests_total{namespace="{{namespace}}",'
            'harness="{{name}}",track="{{track}}"}[{{window}}]))',
            "max": 5000,
            "onNoData": "fail",
        }
    ]
    agent = releases("agent").deployed(spec)
    agent.sim.set_nan("canary")

    agent.new_image(V2)

    status = agent.wait_for_phase("RolledBack", timeout=90)
    assert status["rollback"]["check"] == "tokens"


def test_manual_controls_through_the_kubectl_plugin(
    releases: Given, testbed: localcluster.State, namespace: str
) -> None:
    agent = releases("agent").deployed(release_spec(V1, interval="1h"))
    before = agent.status()["stableRevision"]
    kube = testbed.kubeconfig

    agent.new_image(V2)
    agent.wait_for_release_start(before)
    eventually(lambda: agent.canary_weight() == 20, timeout=30, what="the first step")

    assert plugin("pause", "agent", "-n", namespace, kubeconfig=kube).returncode == 0
    eventually(lambda: agent.status().get("paused") is True, timeout=15, what="paused")
    assert plugin("resume", "agent", "-n", namespace, kubeconfig=kube).returncode == 0
    eventually(lambda: not agent.status().get("paused"), timeout=15, what="resumed")

    assert plugin("promote", "agent", "-n", namespace, kubeconfig=kube).returncode == 0
    eventually(lambda: agent.canary_weight() == 50, timeout=15, what="the next step")

    assert plugin("abort", "agent", "-n", namespace, kubeconfig=kube).returncode == 0
    status = agent.wait_for_phase("RolledBack", timeout=30)
    assert status["rollback"]["reason"] == REASON_ABORTED
    assert agent.canary_weight() == 0

    assert plugin("retry", "agent", "-n", namespace, kubeconfig=kube).returncode == 0
    eventually(lambda: agent.status()["phase"] == "Progressing", timeout=15, what="retried")
    shown = plugin("status", "agent", "-n", namespace, kubeconfig=kube)
    assert shown.returncode == 0
    assert "Progressing" in shown.stdout

    assert plugin("promote", "--full", "agent", "-n", namespace, kubeconfig=kube).returncode == 0
    status = agent.wait_for_phase("Ready", timeout=60, release_of=before)
    assert status["stableRevision"] != before
    annotations = agent.harness.get("agent")["metadata"].get("annotations") or {}
    assert not {"harness.dev/promote", "harness.dev/abort", "harness.dev/retry"} & set(annotations)


def test_a_killed_operator_resumes_the_release_where_it_was(
    releases: Given, operator: OperatorProcess
) -> None:
    interval = 4.0
    spec = release_spec(V1, steps=(20, 40, 60, 80), interval=f"{interval:.0f}s")
    agent = releases("agent").deployed(spec)
    before = agent.status()["stableRevision"]

    agent.new_image(V2)
    eventually(
        lambda: agent.canary_weight() == 40 and agent.status().get("currentStep") == 1,
        timeout=60,
        what="the second step, in the VirtualService and in status",
    )
    operator.kill()
    at_kill = agent.status()
    weight_at_kill = agent.canary_weight()
    # The step began before the kill, so a running operator would move on within one
    # interval from now: watch for two.
    held = stays(
        lambda: (agent.canary_weight(), agent.status().get("currentStep")),
        until=time.time() + 2 * interval,
        what="nothing moves while down",
    )
    assert held == (weight_at_kill, at_kill["currentStep"])
    operator.start()

    status = agent.wait_for_phase("Ready", timeout=90, release_of=before)
    seen = [w for w in (weight_at_kill, *agent.weights) if w]
    assert seen == sorted(seen), f"weights never went back from {weight_at_kill}: {seen}"
    assert {60, 80} <= set(seen), f"the remaining steps ran after the restart: {seen}"
    assert status["stableRevision"] != before


def test_a_new_revision_mid_release_restarts_the_release(
    releases: Given, apps: client.AppsV1Api, namespace: str
) -> None:
    agent = releases("agent").deployed(release_spec(V1, interval="1h"))
    before = agent.status()["stableRevision"]
    agent.new_image(V2)
    eventually(lambda: agent.canary_weight() == 20, timeout=30, what="the first step")
    first = agent.status()["canaryRevision"]

    agent.new_image(V3)

    eventually(
        lambda: agent.status()["canaryRevision"] not in (first, before),
        timeout=20,
        what="the canary revision to follow the spec",
    )
    eventually(lambda: canary_image(apps, namespace, "agent") == V3, timeout=20, what="V3")
    status = agent.status()
    assert status.get("currentStep", 0) == 0
    assert status.get("failedChecks", 0) == 0
    assert any(e["reason"] == "ReleaseRestarted" for e in agent.harness.events("agent"))


def test_a_configmap_change_starts_a_release(
    releases: Given, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "prompts"}, "data": {"system": "be brief"}}
    )
    spec = release_spec(V1, interval="2s")
    spec["envFrom"] = [{"configMapRef": {"name": "prompts"}}]
    agent = releases("agent").deployed(spec)
    before = agent.status()["stableRevision"]

    core.patch_namespaced_config_map("prompts", namespace, {"data": {"system": "be thorough"}})

    agent.wait_for_release_start(before)
    status = agent.wait_for_phase("Ready", timeout=90, release_of=before)
    assert status["stableRevision"] != before


def test_blue_green_switches_all_traffic_at_once(releases: Given) -> None:
    spec = release_spec(V1, steps=(), interval="2s")
    spec["rollout"] = {"strategy": "blueGreen", "interval": "2s", "iterations": 2}
    agent = releases("agent").deployed(spec)
    agent.sim.set_preview_rps(10)  # a tester exercising the new version on its own Service
    before = agent.status()["stableRevision"]

    agent.new_image(V2)

    status = agent.wait_for_phase("Ready", timeout=90, release_of=before)
    assert set(agent.weights) <= {0, 100}, agent.weights
    assert 100 in agent.weights, "all traffic switched to the new version at once"
    assert status["stableRevision"] != before


def test_ab_testing_routes_matching_requests_to_the_canary(releases: Given) -> None:
    spec = release_spec(V1, steps=(), interval="2s")
    spec["rollout"] = {
        "strategy": "abTest",
        "interval": "2s",
        "iterations": 3,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
    }
    agent = releases("agent").deployed(spec)
    before = agent.status()["stableRevision"]

    agent.new_image(V2)
    agent.wait_for_release_start(before)

    def matched() -> bool:
        vs = agent.custom.get_namespaced_custom_object(
            "networking.istio.io", "v1", agent.harness.namespace, "virtualservices", "agent"
        )
        return any(h.get("name") == "canary-match" for h in vs["spec"]["http"])

    eventually(matched, timeout=30, what="the header route to the canary")
    status = agent.wait_for_phase("Ready", timeout=90, release_of=before)
    assert status["stableRevision"] != before
    assert set(agent.weights) <= {0}, "A/B never shifts the default route"
    assert not matched(), "the match route is removed after promotion"


def test_a_canary_that_never_becomes_ready_is_rolled_back_at_the_deadline(
    releases: Given,
) -> None:
    spec = release_spec(V1, interval="2s", progressDeadlineSeconds=30)
    agent = releases("agent").deployed(spec)

    # The new revision cannot be scheduled anywhere: its pods never become ready.
    agent.harness.patch_spec(
        "agent", {"image": V2, "podTemplate": {"nodeSelector": {"harness.dev/nowhere": "true"}}}
    )

    status = agent.wait_for_phase("RolledBack", timeout=90)
    assert status["rollback"]["reason"] == REASON_PROGRESS_DEADLINE
    assert agent.canary_weight() == 0


def test_a_canary_that_loses_every_pod_mid_step_loses_its_traffic_at_once(
    releases: Given, core: client.CoreV1Api, namespace: str
) -> None:
    interval = 20.0
    spec = release_spec(V1, steps=(20, 50), interval=f"{interval:.0f}s")
    agent = releases("agent").deployed(spec)
    agent.new_image(V2)
    eventually(lambda: agent.canary_weight() == 20, timeout=30, what="the first step")

    # The canary's nodes fail: nothing can run its pods again until they come back.
    nodes = [n.metadata.name for n in core.list_node().items]
    try:
        for node in nodes:
            core.patch_node(node, {"spec": {"unschedulable": True}})
        core.delete_collection_namespaced_pod(
            namespace, label_selector="harness.dev/name=agent,harness.dev/track=canary"
        )
        lost_at = time.time()
        eventually(
            lambda: agent.canary_weight() == 0,
            timeout=interval / 2,  # well within the step: only the missing pods explain it
            interval=0.1,
            what="the traffic to leave the canary",
        )
        moved = time.time() - lost_at
        assert agent.status()["phase"] == "Progressing", "its progress deadline decides"
        agent.harness.wait_for_event("agent", "CanaryUnavailable", timeout=10)
    finally:
        for node in nodes:
            core.patch_node(node, {"spec": {"unschedulable": False}})

    status = agent.wait_for_phase("Ready", timeout=120)
    assert status["stableRevision"] == status["canaryRevision"]
    assert moved < interval / 2


def test_status_and_metrics_report_the_release(
    releases: Given, operator: OperatorProcess, testbed: localcluster.State, namespace: str
) -> None:
    agent = releases("agent").deployed(release_spec(V1, interval="30s"))
    before = agent.status()["stableRevision"]
    agent.new_image(V2)
    agent.wait_for_release_start(before)
    eventually(lambda: agent.canary_weight() == 20, timeout=30, what="the first step")
    eventually(
        lambda: operator.metric("harness_canary_weight", {"name": "agent"}) == 20,
        timeout=10,
        what="the weight gauge",
    )
    eventually(lambda: agent.status().get("lastAnalysis"), timeout=20, what="an analysis round")
    shown = plugin("status", "agent", "-n", namespace, "-o", "json", kubeconfig=testbed.kubeconfig)
    assert json.loads(shown.stdout)["phase"] == "Progressing"
    ours = {"namespace": namespace, "name": "agent"}

    def gauges_match_the_last_round() -> bool:
        """Each check's values and outcome on /metrics are those of status.lastAnalysis."""
        results = agent.status()["lastAnalysis"]["results"]
        values = {
            (labels["check"], labels["track"]): value
            for labels, value in operator.samples("harness_canary_metric_value", ours)
        }
        outcomes = {
            (labels["check"], labels["outcome"]): value
            for labels, value in operator.samples("harness_canary_check_outcome", ours)
        }
        if any(r.get("value") is None for r in results):
            return False  # a round without canary data yet: wait for one with values
        for r in results:
            wanted = {(r["name"], "canary"): r["value"]}
            if r.get("stableValue") is not None:
                wanted[(r["name"], "stable")] = r["stableValue"]
            if any(values.get(key) != value for key, value in wanted.items()):
                return False
            for outcome in ("Pass", "Fail", "Inconclusive", "Error"):
                if outcomes.get((r["name"], outcome)) != (1.0 if r["outcome"] == outcome else 0.0):
                    return False
        return {r["name"] for r in results} == {"error-rate", "latency", "cost"}

    eventually(gauges_match_the_last_round, timeout=15, what="the check gauges")

    # A deleted HarnessDeployment leaves no series behind.
    agent.harness.delete("agent")
    eventually(
        lambda: not operator.samples(labels=ours),
        timeout=10,
        what="the deleted HarnessDeployment's series to be dropped",
    )


def test_a_shared_analysis_template_can_roll_a_release_back(
    releases: Given, custom: client.CustomObjectsApi, namespace: str
) -> None:
    custom.create_namespaced_custom_object(
        "harness.dev",
        "v1alpha1",
        namespace,
        "harnessanalysistemplates",
        {
            "apiVersion": "harness.dev/v1alpha1",
            "kind": "HarnessAnalysisTemplate",
            "metadata": {"name": "org-slos"},
            "spec": {
                "window": "10s",
                "checks": [
                    {"name": "org-error-budget", "builtin": "errorRate", "max": 0.02},
                ],
            },
        },
    )
    spec = release_spec(V1, interval="30s")
    spec["analysis"]["checks"] = [
        {"name": "cost", "builtin": "costPerRequest", "relativeToStable": {"max": 1.25}}
    ]
    spec["analysis"]["templates"] = [{"name": "org-slos"}]
    agent = releases("agent").deployed(spec)
    agent.canary_behaves(error_rate=0.3)

    agent.new_image(V2)

    status = agent.wait_for_phase("RolledBack", timeout=90)
    assert status["rollback"]["check"] == "org-error-budget"
    names = {r["name"] for r in status["lastAnalysis"]["results"]}
    assert names == {"cost", "org-error-budget"}

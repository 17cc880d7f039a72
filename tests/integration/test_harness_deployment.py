"""A HarnessDeployment produces a complete, correct, owned set of objects, kept that way.

Each test runs the operator (its console script) against the local cluster, in a
namespace that enforces PodSecurity `restricted`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

import localcluster
from scenarios import Harnesses, Kubectl
from testbed import OperatorProcess, audit_writes, eventually

pytestmark = pytest.mark.usefixtures("operator")

ROOT = Path(__file__).resolve().parents[2]
ISTIO = ("networking.istio.io", "v1")
KICKED_WITHIN = 10.0
"""How long an edited or deleted child may stay wrong: less than the test operator's resync
period, so only the watch on the child (its kick) can undo it in time."""


@pytest.fixture
def resync_seconds() -> float:
    """The test operator's resync period; a test parametrizes this name to change it."""
    return 2.0


def quickstart_spec() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    spec: dict[str, Any] = doc["spec"]
    return spec


def controller_of(obj: Any) -> str | None:
    refs = obj.metadata.owner_references or []
    return next((r.uid for r in refs if r.controller), None)


def test_quickstart_becomes_ready_with_every_owned_object(
    harness: Harnesses,
    namespace: str,
    apps: client.AppsV1Api,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    api_client: client.ApiClient,
) -> None:
    hd = harness.create("pr-reviewer", quickstart_spec())
    uid = hd["metadata"]["uid"]

    harness.wait_ready("pr-reviewer")

    stable = apps.read_namespaced_deployment("pr-reviewer-stable", namespace)
    canary = apps.read_namespaced_deployment("pr-reviewer-canary", namespace)
    assert canary.spec.replicas == 0, "no release is running"
    assert stable.status.available_replicas >= 2, "HPA minReplicas"
    ours = [m for m in stable.metadata.managed_fields if m.manager == "harness-operator"]
    assert ours, "one field manager: harness-operator"
    assert ours[0].operation == "Apply", "server-side apply"
    assert "f:replicas" not in str(ours[0].fields_v1.get("f:spec", {})), "HPA owns replicas"

    pods = core.list_namespaced_pod(namespace, label_selector="harness.dev/track=stable").items
    assert len(pods) >= 2
    for pod in pods:
        assert pod.spec.node_name.startswith("kwok-node-")
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        security = pod.spec.containers[0].security_context
        assert security.read_only_root_filesystem is True
        assert security.allow_privilege_escalation is False

    services = {s.metadata.name: s for s in core.list_namespaced_service(namespace).items}
    assert set(services) == {"pr-reviewer", "pr-reviewer-stable", "pr-reviewer-canary"}
    hpas = client.AutoscalingV2Api(api_client).list_namespaced_horizontal_pod_autoscaler(namespace)
    assert [h.metadata.name for h in hpas.items] == ["pr-reviewer-stable"]
    pdbs = client.PolicyV1Api(api_client).list_namespaced_pod_disruption_budget(namespace)
    assert [p.metadata.name for p in pdbs.items] == ["pr-reviewer-stable"]
    vs = custom.get_namespaced_custom_object(*ISTIO, namespace, "virtualservices", "pr-reviewer")
    weights = {d["destination"]["host"]: d["weight"] for d in vs["spec"]["http"][0]["route"]}
    assert weights == {
        f"pr-reviewer-stable.{namespace}.svc.cluster.local": 100,
        f"pr-reviewer-canary.{namespace}.svc.cluster.local": 0,
    }
    drs = custom.list_namespaced_custom_object(*ISTIO, namespace, "destinationrules")["items"]
    assert sorted(d["metadata"]["name"] for d in drs) == [
        "pr-reviewer-canary",
        "pr-reviewer-stable",
    ]

    owned = [stable, canary, *services.values(), *hpas.items, *pdbs.items]
    assert all(controller_of(o) == uid for o in owned)
    assert all(r["metadata"]["ownerReferences"][0]["uid"] == uid for r in [vs, *drs])

    status = harness.get("pr-reviewer")["status"]
    assert status["observedGeneration"] == hd["metadata"]["generation"]
    assert status["phase"] == "Ready"
    assert status["canaryWeight"] == 0
    assert status["stableRevision"] == status["canaryRevision"]
    assert harness.wait_for_event("pr-reviewer", "Created")


def test_a_converged_resync_sends_zero_write_requests(
    harness: Harnesses, namespace: str, testbed: localcluster.State, operator: OperatorProcess
) -> None:
    harness.create("quiet", quickstart_spec())
    harness.wait_ready("quiet")
    # Let the HPA settle the replica count and the last status write land.
    eventually(
        lambda: (
            (harness.get("quiet")["status"].get("conditions") or [{}])[0].get("message")
            == "2/2 stable replicas available"
        ),
        timeout=60,
        what="2/2 available",
    )

    def writes_sent() -> float:
        return sum(
            operator.metric("harness_operator_kube_requests_total", {"verb": verb})
            for verb in ("post", "put", "patch", "delete")
        )

    def a_pass_without_writes() -> bool:
        passes, writes = operator.reconcile_passes(), writes_sent()
        eventually(
            lambda: operator.reconcile_passes() > passes,
            timeout=3 * operator.resync_seconds,
            interval=0.1,
            what="a resync pass",
        )
        return writes_sent() == writes

    eventually(a_pass_without_writes, timeout=60, interval=0, what="a pass that writes nothing")
    since = time.time()
    writes_before = writes_sent()
    passes_before = operator.reconcile_passes()

    # Three more resyncs of the converged object.
    eventually(
        lambda: operator.reconcile_passes() >= passes_before + 3,
        timeout=3 * operator.resync_seconds + 10,
        interval=0.1,
        what="three resync passes",
    )

    writes = audit_writes(testbed.audit_log, namespace, since)
    assert writes == [], [(w["verb"], w["objectRef"], w["userAgent"]) for w in writes]
    # The operator's own counter agrees (it watches only this namespace).
    assert writes_sent() == writes_before


@pytest.mark.parametrize("resync_seconds", [120.0])
def test_an_edited_or_deleted_object_is_restored(
    harness: Harnesses,
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    kubectl: Kubectl,
    operator: OperatorProcess,
) -> None:
    assert operator.resync_seconds > KICKED_WITHIN, "only the kick may restore them in time"
    harness.create("drifty", quickstart_spec())
    harness.wait_ready("drifty")

    # Someone shifts traffic by hand and deletes a Service.
    kubectl(
        "patch",
        "virtualservice",
        "drifty",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 50},'
        ' {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 50}]',
    )
    core.delete_namespaced_service("drifty-canary", namespace)

    def restored() -> bool:
        vs = custom.get_namespaced_custom_object(*ISTIO, namespace, "virtualservices", "drifty")
        weights = [d["weight"] for d in vs["spec"]["http"][0]["route"]]
        try:
            core.read_namespaced_service("drifty-canary", namespace)
        except ApiException:
            return False
        return weights == [100, 0]

    eventually(
        restored, timeout=KICKED_WITHIN, what="the VirtualService and Service to be restored"
    )


def test_deleting_the_harness_deployment_removes_everything(
    harness: Harnesses, namespace: str, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    harness.create("ephemeral", quickstart_spec())
    harness.wait_ready("ephemeral")

    harness.delete("ephemeral")

    def gone() -> bool:
        return (
            not apps.list_namespaced_deployment(namespace).items
            and not core.list_namespaced_service(namespace).items
        )

    eventually(gone, timeout=60, what="garbage collection of the generated objects")


def test_spec_changes_apply_at_once_and_a_new_image_starts_a_release(
    harness: Harnesses, namespace: str, apps: client.AppsV1Api, api_client: client.ApiClient
) -> None:
    harness.create("changing", quickstart_spec())
    harness.wait_ready("changing")
    before = harness.get("changing")["status"]["stableRevision"]

    # Scaling is not part of a revision: it applies directly, and the HPA goes away.
    harness.patch_spec("changing", {"autoscaling": None, "replicas": 3})

    eventually(
        lambda: apps.read_namespaced_deployment("changing-stable", namespace).spec.replicas == 3,
        timeout=30,
        what="three stable replicas",
    )
    hpa = client.AutoscalingV2Api(api_client)
    eventually(
        lambda: not hpa.list_namespaced_horizontal_pod_autoscaler(namespace).items,
        timeout=30,
        what="the HPA to be deleted",
    )
    assert harness.get("changing")["status"]["stableRevision"] == before

    # A new image is a new revision: it goes to the canary, not straight to stable.
    harness.patch_spec("changing", {"image": "ghcr.io/acme/pr-reviewer:1.5.0"})

    def canary_runs_it() -> bool:
        canary = apps.read_namespaced_deployment("changing-canary", namespace)
        return canary.spec.template.spec.containers[0].image.endswith(":1.5.0")

    eventually(canary_runs_it, timeout=30, what="the canary to run the new image")
    status = harness.get("changing")["status"]
    assert status["phase"] == "Progressing"
    assert status["canaryRevision"] != before
    stable = apps.read_namespaced_deployment("changing-stable", namespace)
    assert stable.spec.template.spec.containers[0].image.endswith(":1.4.0")


def test_a_missing_secret_blocks_creation_until_it_exists(
    harness: Harnesses, namespace: str, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    spec = quickstart_spec()
    spec["env"] = [
        {
            "name": "ANTHROPIC_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "llm-key", "key": "key"}},
        }
    ]
    harness.create("needs-key", spec)

    degraded = harness.wait_for_condition("needs-key", "Degraded", "True")
    assert degraded["reason"] == "MissingReference"
    assert "Secret/llm-key" in degraded["message"]
    event = harness.wait_for_event("needs-key", "MissingReference")
    assert event["type"] == "Warning"
    assert harness.get("needs-key")["status"]["phase"] == "Failed"
    assert apps.list_namespaced_deployment(namespace).items == [], "nothing half-created"

    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "llm-key"}, "stringData": {"key": "sk-test"}}
    )
    harness.wait_ready("needs-key")
    assert harness.condition("needs-key", "Degraded")["status"] == "False"


def test_a_name_too_long_for_generated_objects_is_reported(
    harness: Harnesses, namespace: str, apps: client.AppsV1Api
) -> None:
    name = "a-harness-with-a-name-that-is-far-too-long-for-its-services"
    assert len(name) > 56
    harness.create(name, quickstart_spec())

    degraded = harness.wait_for_condition(name, "Degraded", "True")
    assert degraded["reason"] == "InvalidName"
    assert "56" in degraded["message"]
    assert harness.wait_for_event(name, "InvalidName")["type"] == "Warning"
    assert apps.list_namespaced_deployment(namespace).items == []


def test_a_conflicting_object_is_reported_and_other_harnesses_are_unaffected(
    harness: Harnesses, namespace: str, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": "taken-stable"}, "spec": {"ports": [{"port": 80}]}},
    )
    harness.create("taken", quickstart_spec())
    harness.create("neighbour", quickstart_spec())

    degraded = harness.wait_for_condition("taken", "Degraded", "True")
    assert degraded["reason"] == "Conflict"
    assert "Service taken-stable" in degraded["message"]
    assert harness.wait_for_event("taken", "Conflict")["type"] == "Warning"
    harness.wait_ready("neighbour")
    names = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
    assert names == {"neighbour-stable", "neighbour-canary"}, "nothing of 'taken' was created"
    # The foreign Service is untouched.
    svc = core.read_namespaced_service("taken-stable", namespace)
    assert not svc.metadata.owner_references

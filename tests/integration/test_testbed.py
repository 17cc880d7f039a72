"""The local test bed is a real cluster: these tests would fail against a mock.

Each one proves a part of the control plane does its real job: the scheduler and
controllers make pods Ready on kwok nodes, the apiserver validates the real Istio CRD
schema, RBAC denies, PodSecurity admission rejects, Prometheus scrapes, nothing listens
beyond loopback, and a Job's pod runs the harness to completion with a real outcome.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client import CollectorRegistry, Gauge, start_http_server

import localcluster
from fakeapi import FakeModelAPI, Fault, ModelBehaviour
from podrunner import PodRunner
from testbed import Prometheus, eventually, stays

RESTRICTED_CONTAINER = {
    "name": "app",
    "image": "registry.invalid/smoke:1",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def test_apiserver_runs_the_pinned_kubernetes_build(core: client.CoreV1Api) -> None:
    version = client.VersionApi(core.api_client).get_code()
    assert version.git_version == localcluster.VERSIONS["K8S_VERSION"]


def test_deployment_pods_become_ready_on_kwok_nodes(
    namespace: str, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    labels = {"app": "smoke"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "smoke"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [RESTRICTED_CONTAINER]},
                },
            },
        },
    )

    def available() -> bool:
        status = apps.read_namespaced_deployment_status("smoke", namespace).status
        return int(status.available_replicas or 0) == 2

    eventually(available, timeout=90, what="2 available replicas")
    pods = core.list_namespaced_pod(namespace, label_selector="app=smoke").items
    assert len(pods) == 2
    nodes = {n.metadata.name for n in core.list_node().items}
    for pod in pods:
        assert pod.spec.node_name in nodes, "bound by the real scheduler to a fake node"
        ready = {c.type: c.status for c in pod.status.conditions}
        assert ready["Ready"] == "True"


def test_apiserver_rejects_invalid_virtualservice_by_the_real_istio_schema(
    namespace: str, custom: client.CustomObjectsApi
) -> None:
    bad = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "bad"},
        "spec": {
            "hosts": ["bad"],
            "http": [{"route": [{"destination": {"host": "bad"}, "weight": "lots"}]}],
        },
    }
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", namespace, "virtualservices", bad
        )
    assert err.value.status == 422
    assert "weight" in err.value.body

    good = json.loads(json.dumps(bad))
    good["metadata"]["name"] = "good"
    good["spec"]["http"][0]["route"][0]["weight"] = 100
    custom.create_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", good
    )


def test_rbac_denies_an_unprivileged_serviceaccount(
    namespace: str, core: client.CoreV1Api, testbed: localcluster.State
) -> None:
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    user = f"system:serviceaccount:{namespace}:nobody"

    def can(verb: str, resource: str) -> bool:
        proc = subprocess.run(
            [testbed.kubectl, "auth", "can-i", verb, resource, "-n", namespace, "--as", user],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "KUBECONFIG": testbed.kubeconfig},
        )
        # "no" must be kubectl's answer, not any failure to ask (which prints nothing).
        answer = proc.stdout.strip()
        assert answer in ("yes", "no"), proc.stderr
        return answer == "yes"

    impersonated = client.ApiClient(core.api_client.configuration)
    impersonated.set_default_header("Impersonate-User", user)
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(impersonated).list_namespaced_secret(namespace)
    assert err.value.status == 403
    assert not can("list", "secrets")

    # A Role grant flips exactly that permission: RBAC is evaluated, not deny-all.
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "nobody-reads-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-pods",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        },
    )
    eventually(lambda: can("list", "pods"), timeout=20, what="RBAC grant to take effect")
    client.CoreV1Api(impersonated).list_namespaced_pod(namespace)
    assert not can("list", "secrets")


def test_podsecurity_admission_rejects_a_privileged_pod(
    namespace: str, core: client.CoreV1Api
) -> None:
    privileged = {
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.invalid/x:1",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, privileged)
    assert err.value.status == 403
    assert "violates PodSecurity" in err.value.body
    assert "restricted" in err.value.body

    compliant = {"metadata": {"name": "compliant"}, "spec": {"containers": [RESTRICTED_CONTAINER]}}
    core.create_namespaced_pod(namespace, compliant)


def test_prometheus_scrapes_a_loopback_exporter(prometheus: Prometheus) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("harness_smoke_value", "smoke test value", ["track"], registry=registry)
    value = round(random.uniform(1, 1000), 3)
    gauge.labels(track="canary").set(value)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = server.server_address[1]
    target = prometheus.add_target(port, {"suite": "smoke"})
    try:
        got = eventually(
            lambda: prometheus.scalar('harness_smoke_value{track="canary",suite="smoke"}'),
            timeout=60,
            what="Prometheus to scrape the exporter",
        )
        assert got == pytest.approx(value)
        up = prometheus.scalar(f'up{{instance="127.0.0.1:{port}"}}')
        assert up == 1.0
    finally:
        prometheus.remove_target(target)
        server.shutdown()
        thread.join(5)


def _listening_inodes() -> dict[int, str]:
    """inode -> local address of every LISTEN TCP socket on the machine."""
    found: dict[int, str] = {}
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == "0A":  # LISTEN
                found[inode] = _decode_address(local, family)
    return found


def _decode_address(hex_addr: str, family: int) -> str:
    ip_hex, port_hex = hex_addr.split(":")
    raw = bytes.fromhex(ip_hex)
    if family == 4:
        ip = ".".join(str(b) for b in raw[::-1])
    else:
        words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
        ip = ":".join(b"".join(words).hex()[i : i + 4] for i in range(0, 32, 4))
    return f"{ip}:{int(port_hex, 16)}"


def _is_loopback(address: str) -> bool:
    ip = address.rsplit(":", 1)[0]
    return ip.startswith("127.") or ip == "0000:0000:0000:0000:0000:0000:0000:0001"


def test_every_testbed_socket_listens_on_loopback_only(testbed: localcluster.State) -> None:
    listening = _listening_inodes()
    ours: dict[str, list[str]] = {}
    for pid in localcluster._pids_under(localcluster.RUN_DIR):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in listening:
                    ours.setdefault(comm, []).append(listening[inode])
    components = set(ours)
    for needed in ("etcd", "kube-apiserver", "prometheus"):
        assert any(c.startswith(needed[:15]) for c in components), (needed, ours)
    offenders = {c: [a for a in addrs if not _is_loopback(a)] for c, addrs in ours.items()}
    assert not any(offenders.values()), f"non-loopback listeners: {offenders}"


def test_operator_runs_with_its_own_liveness_endpoint(testbed: localcluster.State) -> None:
    port = localcluster.free_port()
    venv_bin = Path(__file__).resolve().parents[2] / ".venv" / "bin"
    proc = subprocess.Popen(
        [
            str(venv_bin / "harness-operator"),
            "run",
            "--liveness",
            f"http://127.0.0.1:{port}/healthz",
        ],
        env={**os.environ, "KUBECONFIG": testbed.kubeconfig},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                assert proc.poll() is None, "operator exited early"
                return False

        eventually(healthy, timeout=60, what="operator liveness")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out


HARNESS_IMAGE = "localhost/harness-app:1.0"
RUN_KEY = "sk-test-testbed-run-5b2e9c"
GOOD_MODEL, BAD_MODEL = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"


def harness_job(name: str, model: str, base_url: str, **env: str) -> dict[str, Any]:
    """A plain Job (no operator) whose pod runs the reference harness in run mode, labelled
    like a HarnessDeployment's pods: the pod runner runs it, kwok does not complete it."""
    variables = {
        "ANTHROPIC_API_KEY": RUN_KEY,
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_MODEL": model,
        "HARNESS_RUN_TASKS": "2",
        **env,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {localcluster.POD_RUNNER_LABEL: name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "harness",
                            "image": HARNESS_IMAGE,
                            "env": [{"name": k, "value": v} for k, v in variables.items()],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "runAsNonRoot": True,
                                "runAsUser": 65532,  # the image's user
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        }
                    ],
                },
            },
        },
    }


def job_condition(batch: client.BatchV1Api, namespace: str, name: str) -> str | None:
    """The Job's Complete or Failed condition type, once it has one."""
    conditions = batch.read_namespaced_job_status(name, namespace).status.conditions or []
    for condition in conditions:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def job_pod(core: client.CoreV1Api, namespace: str, job: str) -> Any:
    (pod,) = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    return pod


def terminated(pod: Any, container: str = "harness") -> Any:
    (status,) = [s for s in pod.status.container_statuses or [] if s.name == container]
    return status.state.terminated


def test_a_job_pod_runs_the_harness_to_completion_with_its_report(
    namespace: str,
    core: client.CoreV1Api,
    api_client: client.ApiClient,
    fake_api: FakeModelAPI,
    harness_image: str,
    pod_runner: Callable[[dict[str, str]], PodRunner],
    prometheus: Prometheus,
) -> None:
    batch = client.BatchV1Api(api_client)
    fake_api.accept_key(RUN_KEY)
    fake_api.set_model(GOOD_MODEL, ModelBehaviour(output_tokens=40, tool_turns=1))
    fake_api.set_model(BAD_MODEL, ModelBehaviour(error_rate=1.0, error_status=500))
    # The good run's model calls are held (429 with a short retry-after, which the harness
    # honours and retries) until Prometheus has scraped its running pod.
    fake_api.inject(Fault(status=429, count=10_000, model=GOOD_MODEL, retry_after=0.5))
    pod_runner({HARNESS_IMAGE: harness_image})
    batch.create_namespaced_job(
        namespace, harness_job("good-run", GOOD_MODEL, fake_api.url, HARNESS_MAX_RETRIES="20")
    )
    batch.create_namespaced_job(
        namespace, harness_job("bad-run", BAD_MODEL, fake_api.url, HARNESS_MAX_RETRIES="0")
    )
    # A Job pod without the label is not ours: kwok still completes it, running nothing.
    other = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "not-ours"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [RESTRICTED_CONTAINER]}},
        },
    }
    batch.create_namespaced_job(namespace, other)

    # Prometheus scrapes the Job's pod while it runs, with the pod's labels.
    scraped = eventually(
        lambda: prometheus.query(
            f'harness_build_info{{namespace="{namespace}",harness="good-run"}}'
        ),
        timeout=60,
        what="Prometheus to scrape good-run's pod",
    )
    fake_api.clear_faults()
    assert scraped[0]["metric"]["pod"].startswith("good-run-")

    assert (
        eventually(
            lambda: job_condition(batch, namespace, "good-run"), timeout=60, what="good-run to end"
        )
        == "Complete"
    )
    pod = job_pod(core, namespace, "good-run")
    assert pod.status.phase == "Succeeded"
    end = terminated(pod)
    assert (end.exit_code, end.reason) == (0, "Completed")
    assert end.started_at <= end.finished_at
    report = json.loads(end.message)
    calls = [
        r
        for r in fake_api.requests()
        if r.model == GOOD_MODEL and r.endpoint == "messages" and r.status == 200
    ]
    assert len(calls) == 4, "two tasks, a tool turn and an answer each"
    assert report["tasks"] == 2
    assert report["failed"] == 0
    assert report["outputTokens"] == 40 * len(calls)
    assert report["costUsd"] > 0
    ready = {c.type: c.status for c in pod.status.conditions}
    assert (ready["Ready"], ready["ContainersReady"]) == ("False", "False")

    # The Job controller accounted for the pod (and dropped its tracking finalizer); kwok
    # leaves the written status alone.
    def accounted() -> bool:
        finalizers = core.read_namespaced_pod(pod.metadata.name, namespace).metadata.finalizers
        return "batch.kubernetes.io/job-tracking" not in (finalizers or [])

    eventually(accounted, timeout=30, what="the Job controller to release the pod")
    assert batch.read_namespaced_job_status("good-run", namespace).status.succeeded == 1

    def outcome() -> tuple[str, str]:
        seen = core.read_namespaced_pod(pod.metadata.name, namespace)
        return seen.status.phase, terminated(seen).message

    assert stays(outcome, until=time.time() + 3, what="the pod's terminal status") == (
        "Succeeded",
        end.message,
    )

    assert (
        eventually(
            lambda: job_condition(batch, namespace, "bad-run"), timeout=60, what="bad-run to end"
        )
        == "Failed"
    )
    pod = job_pod(core, namespace, "bad-run")
    assert pod.status.phase == "Failed"
    end = terminated(pod)
    assert (end.exit_code, end.reason) == (1, "Error")
    report = json.loads(end.message)
    assert (report["tasks"], report["failed"], report["outputTokens"]) == (2, 2, 0)
    assert batch.read_namespaced_job_status("bad-run", namespace).status.failed == 1

    not_ours = eventually(
        lambda: job_condition(batch, namespace, "not-ours"), timeout=60, what="not-ours to end"
    )
    assert not_ours == "Complete"
    end = terminated(job_pod(core, namespace, "not-ours"), RESTRICTED_CONTAINER["name"])
    assert (end.exit_code, end.reason, end.message) == (0, "Completed", None)

"""The real data path: the reference harness runs in real containers (podman) for the
HarnessDeployment's pods, reads only what the operator rendered, calls the model API
through the anthropic SDK, is scraped by Prometheus with its pod's labels, and takes
traffic in the proportions of the live VirtualService. A model change is seen where it
matters: the canary's containers call the model API with the new model id and the key
from the Secret.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from fakeapi import FakeModelAPI, ModelBehaviour
from meshproxy import MeshProxy, TaskLoad
from podrunner import PodRunner, RunningPod
from scenarios import Harnesses
from testbed import OperatorProcess, Prometheus, eventually

pytestmark = pytest.mark.usefixtures("crds")

SONNET, OPUS = "claude-sonnet-4-6", "claude-opus-4-6"
KEY = "sk-test-runtime-6c1d8e2f4a"
IMAGE = "localhost/harness-app:1.0"


def put_secret(core: client.CoreV1Api, namespace: str, data: dict[str, str]) -> None:
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="model-key"), string_data=data)
    )


def read_vs(custom: client.CustomObjectsApi, namespace: str, name: str) -> Any:
    def read() -> dict[str, Any] | None:
        try:
            vs: dict[str, Any] = custom.get_namespaced_custom_object(
                "networking.istio.io", "v1", namespace, "virtualservices", name
            )
        except client.ApiException:
            return None
        return vs

    return read


def info(pod: RunningPod) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{pod.port}/info", timeout=5) as resp:
        result: dict[str, Any] = json.load(resp)
    return result


def on(track: str, count: int, revision: str | None = None) -> Callable[[list[RunningPod]], bool]:
    def check(pods: list[RunningPod]) -> bool:
        matching = [
            p for p in pods if p.track == track and p.ready and revision in (None, p.revision)
        ]
        return len(matching) >= count

    return check


def test_a_model_change_reaches_the_canary_containers(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    harness_image: str,
    pod_runner: Callable[[dict[str, str]], PodRunner],
    prometheus: Prometheus,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
) -> None:
    fake_api.accept_key(KEY)
    fake_api.set_model(SONNET, ModelBehaviour(output_tokens=40, tool_turns=1))
    fake_api.set_model(OPUS, ModelBehaviour(output_tokens=40, tool_turns=1))
    put_secret(core, namespace, {"api-key": KEY})
    runner = pod_runner({IMAGE: harness_image})
    spec = {
        "image": IMAGE,
        "port": 8080,
        "replicas": 2,
        "model": {
            "provider": "anthropic",
            "name": SONNET,
            "baseURL": fake_api.url,
            "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
        },
        "rollout": {"steps": [{"weight": 50}], "interval": "8s", "progressDeadlineSeconds": 90},
        # This test is about the data path; the checks have their own scenarios.
        "analysis": {"harnessChecks": {"enabled": False}},
    }
    harness.create("agent", spec)
    harness.wait_ready("agent")
    stable = harness.get("agent")["status"]["stableRevision"]
    pods = runner.wait_for(on("stable", 2, stable), timeout=90, what="2 stable containers")
    seen = info(pods[0])
    assert (seen["provider"], seen["model"]) == ("anthropic", SONNET)
    assert "ANTHROPIC_API_KEY" in json.dumps(seen)
    assert KEY not in json.dumps(seen)

    with MeshProxy(read_vs(custom, namespace, "agent"), namespace, "agent", runner) as proxy:
        load = TaskLoad(proxy.url, rate=4.0, concurrency=6, max_seconds=150).start()
        try:
            eventually(
                lambda: load.outcomes[200] >= 4, timeout=30, what="tasks answered through the mesh"
            )
            calls = [r for r in fake_api.requests() if r.endpoint == "messages"]
            assert {(r.model, r.credential) for r in calls} == {(SONNET, KEY)}

            # Prometheus scrapes each pod with its labels, as the relabelling would.
            series = eventually(
                lambda: prometheus.query(
                    f'harness_tasks_total{{namespace="{namespace}",harness="agent"}}'
                ),
                timeout=30,
                what="harness_tasks_total in Prometheus",
            )
            labels = {(s["metric"]["track"], s["metric"]["revision"]) for s in series}
            assert labels == {("stable", stable)}

            harness.patch_spec("agent", {"model": {**spec["model"], "name": OPUS}})
            canary = eventually(
                lambda: (
                    (s := harness.get("agent")["status"]).get("canaryWeight")
                    and s["canaryRevision"]
                ),
                timeout=60,
                what="canary traffic",
            )
            runner.wait_for(on("canary", 1, canary), timeout=60, what="a canary container")
            eventually(
                lambda: proxy.stats().get("canary", 0) >= 3, timeout=30, what="canary traffic"
            )
            opus = [r for r in fake_api.requests() if r.model == OPUS and r.endpoint == "messages"]
            assert opus, "the canary called the model API with the new model"
            assert {r.credential for r in opus} == {KEY}

            eventually(
                lambda: (
                    harness.get("agent")["status"].get("phase") == "Ready"
                    and harness.get("agent")["status"]["stableRevision"] == canary
                ),
                timeout=90,
                what="the promotion",
            )
            runner.wait_for(
                lambda pods: (
                    pods
                    and all(p.revision == canary for p in pods)
                    and len([p for p in pods if p.track == "stable" and p.ready]) == 2
                ),
                timeout=90,
                what="only the new revision's containers running",
            )
            fake_api.clear_requests()
            before = load.outcomes[200]
            eventually(lambda: load.outcomes[200] >= before + 4, timeout=30, what="more tasks")
            models = {r.model for r in fake_api.requests() if r.endpoint == "messages"}
            assert models == {OPUS}
        finally:
            load.stop()


def service_account_key(api: FakeModelAPI, email: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "acme-agents",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": email,
            "client_id": "1",
            "token_uri": api.url + "/token",
        }
    )


def provider_sections(api: FakeModelAPI) -> dict[str, dict[str, Any]]:
    key = {"secretRef": {"name": "model-key", "key": "api-key"}}
    return {
        "gateway": {"provider": "gateway", "name": SONNET, "baseURL": api.url, "credentials": key},
        "bedrock": {
            "provider": "bedrock",
            "name": "anthropic.claude-sonnet-4-6",
            "region": "us-east-1",
            "baseURL": api.url,
            "credentials": key,
        },
        "vertex": {
            "provider": "vertex",
            "name": SONNET,
            "region": "us-east5",
            "projectId": "acme-agents",
            "baseURL": api.url + "/v1",
            "credentials": {"secretRef": {"name": "model-key", "key": "sa.json"}},
        },
        "foundry": {
            "provider": "foundry",
            "name": SONNET,
            "baseURL": api.url + "/anthropic/",
            "credentials": key,
        },
    }


def test_each_provider_reaches_the_model_api_its_own_way(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    harness_image: str,
    pod_runner: Callable[[dict[str, str]], PodRunner],
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    """The harness process sees the environment the operator rendered for each provider and
    the anthropic SDK inside it calls the model API on that provider's paths, with the
    credential from the Secret (for Vertex: a service-account key file, exchanged for a
    token at its token endpoint)."""
    email = "agent@acme-agents.iam.gserviceaccount.com"
    fake_api.accept_key(KEY)
    fake_api.accept_service_account(email)
    fake_api.set_model(SONNET, ModelBehaviour(output_tokens=20))
    put_secret(core, namespace, {"api-key": KEY, "sa.json": service_account_key(fake_api, email)})
    runner = pod_runner({IMAGE: harness_image})
    sections = provider_sections(fake_api)
    for provider, section in sections.items():
        harness.create(provider, {"image": IMAGE, "port": 8080, "model": section})
    for provider, section in sections.items():
        pod = runner.wait_for(
            lambda pods, p=provider: any(x.ready and x.pod.startswith(f"{p}-") for x in pods),
            timeout=90,
            what=f"the {provider} container",
        )
        (running,) = [x for x in pod if x.pod.startswith(f"{provider}-")]
        seen = info(running)
        assert (seen["provider"], seen["model"]) == (provider, section["name"]), seen
        fake_api.clear_requests()
        request = urllib.request.Request(
            f"http://127.0.0.1:{running.port}/v1/tasks",
            data=json.dumps({"prompt": "hello"}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert json.load(resp)["outcome"] == "success"
        calls = [r for r in fake_api.requests() if r.endpoint == "messages"]
        style = "anthropic" if provider == "gateway" else provider
        assert {r.provider for r in calls} == {style}, provider
        credential = {r.credential for r in calls}
        if provider == "vertex":
            tokens = [r for r in fake_api.requests() if r.endpoint == "token"]
            assert tokens, "the key file was exchanged at its token endpoint"
            assert all(c and c.startswith("ya29.") for c in credential)
        else:
            assert credential == {KEY}, provider

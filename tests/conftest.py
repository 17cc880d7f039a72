"""Shared fixtures: the local test bed (a real control plane + Prometheus), per-test
namespaces that enforce PodSecurity `restricted`, and Prometheus helpers.

Integration tests live in tests/integration and are marked `cluster` automatically; the
session cluster starts only when one of them runs.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

import images
import localcluster
from fakeapi import FakeModelAPI
from harness_operator.kube import Kube
from harness_operator.sim import TrafficSim
from podrunner import PodRunner, cleanup_leftovers
from scenarios import Harnesses, Kubectl, Releases
from testbed import OperatorProcess, Prometheus, install_crds

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def testbed() -> Iterator[localcluster.State]:
    """A running local cluster: reuse one that is up, else start it and stop it at the end."""
    if localcluster.is_running():
        state = localcluster.load_state()
        assert state is not None
        started_here = False
    else:
        state = localcluster.up()
        started_here = True
    os.environ["KUBECONFIG"] = state.kubeconfig
    yield state
    if started_here and not os.environ.get("HARNESS_KEEP_CLUSTER"):
        localcluster.down()


@pytest.fixture(scope="session")
def api_client(testbed: localcluster.State) -> client.ApiClient:
    return config.new_client_from_config(config_file=testbed.kubeconfig)


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def batch(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test that enforces the `restricted` Pod Security Standard."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:5]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    "harness.dev/test": "true",
                },
            )
        )
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def prometheus(testbed: localcluster.State) -> Prometheus:
    return Prometheus(testbed.prometheus_url, Path(testbed.prometheus_targets_dir))


@pytest.fixture(scope="session")
def kubectl(testbed: localcluster.State) -> Kubectl:
    return Kubectl(testbed.kubectl, testbed.kubeconfig)


@pytest.fixture(scope="session")
def crds(testbed: localcluster.State) -> None:
    """Our CRDs, as generated in crds/, applied to the test bed."""
    install_crds(ROOT)


@pytest.fixture
def resync_seconds() -> float:
    """The test operator's resync period; a module overrides this fixture to change it."""
    return 2.0


@pytest.fixture
def operator(
    testbed: localcluster.State, crds: None, namespace: str, tmp_path: Path, resync_seconds: float
) -> Iterator[OperatorProcess]:
    """The operator, running as its console script against the test bed and watching only
    this test's namespace (so tests never share, or fight over, an operator)."""
    proc = OperatorProcess(
        testbed.kubeconfig,
        tmp_path / "operator.log",
        namespace=namespace,
        prometheus_url=testbed.prometheus_url,
        resync_seconds=resync_seconds,
    )
    yield proc
    proc.stop()


@pytest.fixture
def harness(namespace: str, custom: client.CustomObjectsApi, kubectl: Kubectl) -> Harnesses:
    return Harnesses(custom, kubectl, namespace)


@pytest.fixture
def releases(
    harness: Harnesses,
    custom: client.CustomObjectsApi,
    prometheus: Prometheus,
    operator: OperatorProcess,
) -> Iterator[Callable[[str], Releases]]:
    """Factory: `releases("agent")` gives the scenario helper for HarnessDeployment `agent`,
    with the traffic simulator started and scraped by the test bed's Prometheus."""
    started: list[tuple[TrafficSim, Path]] = []

    def make(name: str) -> Releases:
        sim = TrafficSim(Kube(), harness.namespace, name, rps=30.0, seed=7)
        port = sim.start()
        started.append((sim, prometheus.add_target(port, {"suite": "releases"})))
        return Releases(harness, sim, custom)

    yield make
    for sim, target in started:
        prometheus.remove_target(target)
        sim.stop()


@pytest.fixture(scope="session")
def fake_api_server() -> Iterator[FakeModelAPI]:
    """The local Anthropic-compatible model API (the one thing the test bed fakes)."""
    with FakeModelAPI() as api:
        yield api


@pytest.fixture
def fake_api(fake_api_server: FakeModelAPI) -> FakeModelAPI:
    """The fake model API, reset for this test (no keys, no models, no faults)."""
    fake_api_server.reset()
    return fake_api_server


@pytest.fixture(scope="session")
def harness_image() -> str:
    """The reference harness's image (examples/harness-app), built with podman on the
    local base image, or reused when its inputs did not change."""
    return images.harness_image()


@pytest.fixture
def pod_runner(
    api_client: client.ApiClient, prometheus: Prometheus, namespace: str, tmp_path: Path
) -> Iterator[Callable[[dict[str, str]], PodRunner]]:
    """Factory: `pod_runner({"localhost/harness-app:1.0": image})` runs real containers for
    this namespace's ready harness pods (see cluster/podrunner.py) until the test ends."""
    started: list[PodRunner] = []

    def make(image_map: dict[str, str]) -> PodRunner:
        runner = PodRunner(
            api_client, namespace, prometheus.targets_dir, image_map, tmp_path / "pods"
        )
        started.append(runner.start())
        return runner

    yield make
    for runner in started:
        runner.stop()
    if started:
        cleanup_leftovers(namespace)

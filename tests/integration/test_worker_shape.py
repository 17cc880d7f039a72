"""Worker-shaped harnesses on the real data path: the reference harness in containers leases
tasks from a shared queue; no Service or routing exists. A release gives the canary a share
of the *replicas* (each step's weight), judged on each track's task metrics; a bad canary is
rolled back. Scaled by KEDA, the workers go to zero between bursts and back, the canary's
share with them, and no canary pod is left after promotion.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from fakeapi import FakeModelAPI, ModelBehaviour
from podrunner import PodRunner
from scenarios import Harnesses, Kubectl, model_key
from taskqueue import TaskQueue
from testbed import OperatorProcess, eventually
from unit.test_shapes import INVALID as INVALID_WORKERS
from unit.test_shapes import WORKER as WORKER_SPEC

pytestmark = pytest.mark.usefixtures("crds")

KEY = "sk-test-worker-2b7d41"
IMAGE = "localhost/harness-app:1.0"
GOOD, BAD = "claude-sonnet-4-6", "claude-opus-4-6"


def worker_spec(api: FakeModelAPI, queue: TaskQueue, **extra: Any) -> dict[str, Any]:
    return {
        "image": IMAGE,
        "port": 8080,
        "shape": "worker",
        "replicas": 4,
        "terminationGracePeriodSeconds": 60,
        "worker": {"concurrency": 2, "maxTaskDurationSeconds": 60},
        "env": [
            {"name": "HARNESS_QUEUE_URL", "value": queue.url},
            {
                "name": "HARNESS_WORKER_NAME",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
            },
        ],
        "model": {
            "provider": "anthropic",
            "name": GOOD,
            "baseURL": api.url,
            "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
        },
        "rollout": {
            "steps": [{"weight": 25}, {"weight": 50}],
            "interval": "6s",
            "progressDeadlineSeconds": 30,
        },
        # A p95 over the three tasks a step needs here is the canary's cold start (its
        # first tasks wait for the SDK to warm up): latency is left to the longer runs.
        "analysis": {
            "window": "10s",
            "checkInterval": "1s",
            "minTasks": 3,
            "harnessChecks": {"disabled": ["task-latency-p95", "time-to-first-token-p95"]},
        },
        **extra,
    }


class Feeder:
    """Keeps a few tasks waiting in the queue, always (bounded in time)."""

    def __init__(self, queue: TaskQueue, depth: int = 8, seconds: float = 240) -> None:
        self.queue, self.depth, self.seconds = queue, depth, seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(int(self.seconds / 0.1)):
            if self.stop.wait(0.1):
                return
            missing = self.depth - self.queue.depth
            if missing > 0:
                self.queue.put(*["review this change"] * missing)

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def queue() -> Iterator[TaskQueue]:
    with TaskQueue() as q:
        yield q


@pytest.fixture
def worker_rig(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    harness_image: str,
    pod_runner: Callable[[dict[str, str]], PodRunner],
    core: client.CoreV1Api,
    namespace: str,
) -> PodRunner:
    model_key(fake_api, core, namespace, KEY)
    fake_api.set_model(GOOD, ModelBehaviour(output_tokens=100, tool_turns=1))
    fake_api.set_model(BAD, ModelBehaviour(output_tokens=100, error_rate=1.0, error_status=500))
    return pod_runner({IMAGE: harness_image})


def replicas(apps: client.AppsV1Api, namespace: str) -> tuple[int, int]:
    def of(track: str) -> int:
        return int(apps.read_namespaced_deployment(f"agent-{track}", namespace).spec.replicas or 0)

    return of("stable"), of("canary")


def status(harness: Harnesses) -> dict[str, Any]:
    result: dict[str, Any] = harness.get("agent").get("status") or {}
    return result


def test_a_worker_release_steps_through_replica_shares_and_a_bad_one_rolls_back(
    harness: Harnesses,
    worker_rig: PodRunner,
    fake_api: FakeModelAPI,
    queue: TaskQueue,
    apps: client.AppsV1Api,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    runner = worker_rig
    harness.create("agent", worker_spec(fake_api, queue))
    harness.wait_ready("agent", timeout=90)
    listed = kubectl("get", "svc,virtualservices,destinationrules", "-n", namespace, "-o", "name")
    assert listed.strip() == "", "a worker has no Service and no routing"
    assert replicas(apps, namespace) == (4, 0)
    runner.wait_for(lambda pods: len([p for p in pods if p.ready]) == 4, timeout=90)

    with Feeder(queue):
        first = status(harness)["stableRevision"]
        harness.patch_spec(
            "agent",
            {
                "env": [
                    *worker_spec(fake_api, queue)["env"],
                    {"name": "HARNESS_MAX_TURNS", "value": "6"},
                ]
            },
        )
        seen: list[tuple[int, int, int]] = []

        def promoted() -> bool:
            s = status(harness)
            entry = (s.get("canaryWeight") or 0, *replicas(apps, namespace))
            if not seen or seen[-1] != entry:
                seen.append(entry)
            return s.get("phase") == "Ready" and s.get("stableRevision") != first

        eventually(promoted, timeout=120, interval=0.2, what="the worker release promoted")
        assert (25, 3, 1) in seen, seen  # a quarter of the workers
        assert (50, 2, 2) in seen, seen  # half
        eventually(lambda: replicas(apps, namespace) == (4, 0), timeout=30, what="canary gone")
        canary_leases = [w for w, n in queue.by_worker().items() if "-canary-" in w and n > 0]
        assert canary_leases, "the canary's workers consumed from the same queue"

        # A bad canary (every model call fails): rolled back on its task errors.
        before = status(harness)["stableRevision"]
        model = {**worker_spec(fake_api, queue)["model"], "name": BAD}
        harness.patch_spec("agent", {"model": model})
        rolled = eventually(
            lambda: (s := status(harness)).get("phase") == "RolledBack" and s,
            timeout=120,
            what="the rollback",
        )
        assert rolled["rollback"]["check"] == "task-error-rate", rolled["rollback"]
        assert rolled["stableRevision"] == before
        eventually(lambda: replicas(apps, namespace) == (4, 0), timeout=30, what="canary gone")


def test_keda_scales_workers_to_zero_and_back_without_stuck_canary_pods(
    harness: Harnesses,
    worker_rig: PodRunner,
    fake_api: FakeModelAPI,
    queue: TaskQueue,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    keda = {
        "concurrency": 2,
        "maxTaskDurationSeconds": 60,
        "keda": {
            "minReplicaCount": 0,
            "maxReplicaCount": 4,
            "triggers": [{"type": "metrics-api", "metadata": {"url": queue.url + "/stats"}}],
        },
    }
    spec = worker_spec(fake_api, queue, worker=keda)
    del spec["replicas"]
    harness.create("agent", spec)
    harness.wait_ready("agent", timeout=90)
    scaled = custom.get_namespaced_custom_object(
        "keda.sh", "v1alpha1", namespace, "scaledobjects", "agent-stable"
    )
    assert scaled["spec"]["scaleTargetRef"]["name"] == "agent-stable"
    assert scaled["spec"]["minReplicaCount"] == 0

    def keda_scales(count: int) -> None:
        """What KEDA does: scale the stable Deployment (its own field manager)."""
        kubectl("scale", "deployment/agent-stable", f"--replicas={count}", "-n", namespace)

    keda_scales(4)
    with Feeder(queue):
        first = status(harness)["stableRevision"]
        harness.patch_spec(
            "agent", {"env": [*spec["env"], {"name": "HARNESS_MAX_TURNS", "value": "5"}]}
        )
        eventually(lambda: replicas(apps, namespace) == (4, 1), timeout=60, what="canary 25%")

        # The burst is over: KEDA scales the workers to zero, the canary's share follows,
        # and the release waits — past its 30 s progress deadline, without a rollback.
        keda_scales(0)
        eventually(lambda: replicas(apps, namespace) == (0, 0), timeout=30, what="all at zero")
        held_at = status(harness).get("releaseCount")
        # Past the 30 s progress deadline the release is still waiting, not rolled back.
        until = time.monotonic() + 35
        while time.monotonic() < until:
            s = status(harness)
            assert (s.get("phase"), s.get("rollbackCount")) == ("Progressing", None), s
            assert replicas(apps, namespace) == (0, 0)
            time.sleep(0.5)
        # Work again: KEDA scales up, the canary gets its share back, the release ends.
        keda_scales(4)
        eventually(
            lambda: (
                (s := status(harness)).get("phase") == "Ready" and s.get("stableRevision") != first
            ),
            timeout=120,
            what="the promotion after the pause",
        )
        assert status(harness).get("releaseCount") == held_at
    eventually(lambda: replicas(apps, namespace)[1] == 0, timeout=30, what="no canary pods")
    worker_rig.wait_for(
        lambda pods: not [p for p in pods if p.track == "canary"],
        timeout=30,
        what="no canary pod left behind",
    )
    stable = apps.read_namespaced_deployment("agent-stable", namespace)
    annotations = stable.metadata.annotations or {}
    assert not [k for k in annotations if k.startswith("autoscaling.keda.sh/")], annotations


@pytest.mark.parametrize(
    ("extra", "message"), [pytest.param(e, m, id=i) for i, e, m in INVALID_WORKERS]
)
def test_the_apiserver_rejects_invalid_worker_specs(
    harness: Harnesses, extra: dict[str, Any], message: str
) -> None:
    raw = {k: v for k, v in {**WORKER_SPEC, **extra}.items() if v is not None}
    err = harness.try_create("bad", raw)
    assert err is not None, "accepted"
    assert err.status == 422, err.body
    assert message in err.body, err.body

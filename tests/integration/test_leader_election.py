"""Two operator replicas with leader election: one acts, the other stands by; killing the
active one mid-release hands the release to the standby within 15 s, and it carries on
where the release was, with no step taken or announced twice (issue 11, HA)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

import localcluster
from harness_operator.kube import Kube
from harness_operator.sim import TrafficSim
from scenarios import Harnesses, Releases, release_spec
from testbed import OperatorProcess, Prometheus, eventually

pytestmark = pytest.mark.usefixtures("crds")

V1, V2 = "ghcr.io/acme/agent:1.0", "ghcr.io/acme/agent:1.1"


@pytest.fixture
def replicas(
    testbed: localcluster.State, namespace: str, tmp_path: Path
) -> Iterator[list[OperatorProcess]]:
    env = {"HARNESS_LEADER_ELECTION": "true", "HARNESS_LEADER_ELECTION_NAMESPACE": namespace}
    started: list[OperatorProcess] = []
    try:
        for name in ("a", "b"):
            started.append(
                OperatorProcess(
                    testbed.kubeconfig,
                    tmp_path / f"operator-{name}.log",
                    namespace=namespace,
                    prometheus_url=testbed.prometheus_url,
                    env={**env, "POD_NAME": f"operator-{name}"},
                )
            )
        yield started
    finally:
        for proc in started:
            if proc.proc.poll() is None:
                proc.stop()


@pytest.fixture
def agent(
    harness: Harnesses, custom: client.CustomObjectsApi, prometheus: Prometheus
) -> Iterator[Releases]:
    sim = TrafficSim(Kube(), harness.namespace, "agent", rps=30.0, seed=7)
    target = prometheus.add_target(sim.start(), {"suite": "releases"})
    try:
        yield Releases(harness, sim, custom)
    finally:
        prometheus.remove_target(target)
        sim.stop()


def leader_of(replicas: list[OperatorProcess]) -> list[OperatorProcess]:
    return [r for r in replicas if r.proc.poll() is None and r.metric("harness_operator_leader")]


def test_the_standby_takes_over_a_release_when_the_leader_is_killed(
    replicas: list[OperatorProcess], agent: Releases, namespace: str
) -> None:
    (leader,) = eventually(lambda: leader_of(replicas), timeout=30, what="one leader")
    (standby,) = [r for r in replicas if r is not leader]
    agent.deployed(release_spec(V1, steps=(20, 40, 60, 80), interval="4s"))
    before = agent.status()["stableRevision"]

    agent.new_image(V2)
    eventually(lambda: agent.status().get("currentStep") == 1, timeout=60, what="the second step")
    assert f"{namespace}/agent:" not in standby.log_path.read_text(), "the standby acted"
    leader.kill()
    killed = time.monotonic()
    eventually(lambda: leader_of([standby]), timeout=20, what="the standby to take over")
    failover = time.monotonic() - killed

    status = agent.wait_for_phase("Ready", timeout=90, release_of=before)
    assert status["stableRevision"] != before
    assert failover <= 15, f"failover took {failover:.1f}s"
    events = Counter(
        (e["reason"], e["message"])
        for e in agent.harness.events("agent")
        if e["reason"] in ("StepAdvanced", "Promoted", "ReleaseStarted")
        for _ in range(e.get("count", 1))
    )
    assert set(events.values()) == {1}, events
    print(f"FAILOVER: {failover:.1f} s")

"""Benchmarks of the release engine on the local cluster (`make bench`).

Each figure is printed on its own line as `NAME: value [unit]`:

- RBK: seconds from the moment a breach is visible in Prometheus (the failing check's own
  query crosses its threshold) to the VirtualService routing 100 % to stable. RBK_RATIO =
  RBK / (2 x scrape interval + 1 s); the target is <= 1.0 whatever the step interval, so it
  is measured with a short and a long step interval.
- PROMO: time from a healthy release's start to its promotion (phase Ready on the new
  revision), divided by its configured schedule (steps x interval); the target is <= 1.05.
- PREFLIGHT_*: 50 HarnessDeployments sharing one model key, against the local model API
  answering in 50 ms: the provider calls the operator made (PREFLIGHT_CALLS, ideally 1),
  its cache hit rate over every lookup of the run (PREFLIGHT_HIT_RATE), the mean duration
  of a check (PREFLIGHT_MS), and the time from fixing a refused key to the canary's first
  traffic (PREFLIGHT_FIX_TO_TRAFFIC).

The operator runs as its console script, the traffic simulator feeds the real Prometheus.
Everything is bounded in time and stops by itself.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "cluster"), str(ROOT / "tests"), str(ROOT / "bench")]

from kubernetes import client, config
from scale import scale_figures

import localcluster
from fakeapi import FakeModelAPI, ModelBehaviour
from harness_operator.kube import Kube
from harness_operator.sim import TrafficSim
from scenarios import Harnesses, Kubectl
from testbed import (
    OperatorProcess,
    Prometheus,
    canary_weight,
    eventually,
    fresh_namespace,
    install_crds,
)

NAMESPACE = "harness-bench"
SCRAPE_SECONDS = localcluster.SCRAPE_INTERVAL_SECONDS
ERROR_RATE_QUERY = (
    'sum(rate(harness_requests_total{{namespace="{ns}",harness="{name}",track="canary",'
    'outcome="error"}}[{w}])) / sum(rate(harness_requests_total{{namespace="{ns}",'
    'harness="{name}",track="canary"}}[{w}]))'
)


def spec(image: str, steps: list[int], interval: str) -> dict[str, Any]:
    return {
        "image": image,
        "port": 8000,
        "replicas": 2,
        "rollout": {"steps": [{"weight": w} for w in steps], "interval": interval},
        "analysis": {
            "window": "5s",
            "checkInterval": f"{SCRAPE_SECONDS}s",
            "failureLimit": 1,
            "minRequests": 3,
            "checks": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05}],
        },
    }


class Bench:
    def __init__(self, state: localcluster.State) -> None:
        api = config.new_client_from_config(config_file=state.kubeconfig)
        self.custom = client.CustomObjectsApi(api)
        self.harness = Harnesses(self.custom, Kubectl(state.kubectl, state.kubeconfig), NAMESPACE)
        self.prometheus = Prometheus(state.prometheus_url, Path(state.prometheus_targets_dir))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.harness.get(name).get("status") or {})

    def canary_weight(self, name: str) -> int:
        return canary_weight(self.custom, NAMESPACE, name)

    def create(self, name: str, body: dict[str, Any]) -> None:
        self.harness.create(name, body)
        eventually(
            lambda: self.status(name).get("phase") == "Ready", timeout=120, what=f"{name} Ready"
        )

    def set_image(self, name: str, image: str) -> None:
        self.harness.patch_spec(name, {"image": image})

    def rollback_time(self, name: str, interval: str) -> float:
        """One RBK measurement: breach the canary mid-step and time the way back."""
        sim = TrafficSim(Kube(), NAMESPACE, name, rps=40.0, seed=3)
        target = self.prometheus.add_target(sim.start(), {"suite": "bench"})
        try:
            self.create(name, spec("bench/agent:1", [20, 40, 60], interval))
            before = self.status(name)["stableRevision"]
            self.set_image(name, "bench/agent:2")
            eventually(lambda: self.canary_weight(name) == 20, timeout=60, what="first step")
            eventually(
                lambda: self.status(name).get("lastAnalysis", {}).get("outcome") == "Pass",
                timeout=60,
                what="a passing round",
            )
            query = ERROR_RATE_QUERY.format(ns=NAMESPACE, name=name, w="5s")
            sim.set_track("canary", error_rate=0.5)
            visible = eventually(
                lambda: (
                    (v := self.prometheus.scalar(query)) is not None
                    and v > 0.05
                    and time.monotonic()
                ),
                timeout=30,
                interval=0.05,
                what="the breach in Prometheus",
            )
            back = eventually(
                lambda: self.canary_weight(name) == 0 and time.monotonic(),
                timeout=30,
                interval=0.05,
                what="100 % stable",
            )
            assert self.status(name)["stableRevision"] == before
            return float(back - visible)
        finally:
            self.prometheus.remove_target(target)
            sim.stop()
            self.harness.delete(name)

    def promotion_ratio(self, name: str, steps: list[int], interval_s: int) -> tuple[float, float]:
        sim = TrafficSim(Kube(), NAMESPACE, name, rps=40.0, seed=4)
        target = self.prometheus.add_target(sim.start(), {"suite": "bench"})
        try:
            self.create(name, spec("bench/agent:1", steps, f"{interval_s}s"))
            before = self.status(name)["stableRevision"]
            started = time.monotonic()
            self.set_image(name, "bench/agent:2")
            eventually(
                lambda: (
                    (s := self.status(name)).get("phase") == "Ready"
                    and s.get("stableRevision") != before
                ),
                timeout=len(steps) * interval_s * 3 + 60,
                interval=0.1,
                what="promotion",
            )
            took = time.monotonic() - started
            return took, took / (len(steps) * interval_s)
        finally:
            self.prometheus.remove_target(target)
            sim.stop()


def credentials_valid(status: dict[str, Any]) -> str | None:
    found = [c for c in status.get("conditions") or [] if c["type"] == "CredentialsValid"]
    return str(found[0]["status"]) if found else None


PREFLIGHT_KEY = "sk-bench-good-3e7a"
PREFLIGHT_MODEL = "claude-sonnet-4-6"


def preflight_figures(
    bench: Bench, operator: OperatorProcess, core: client.CoreV1Api, count: int = 50
) -> None:
    fake = FakeModelAPI().start()
    try:
        fake.accept_key(PREFLIGHT_KEY)
        fake.set_model(PREFLIGHT_MODEL, ModelBehaviour(latency_seconds=0.05))
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name="model-key"), string_data={"k": PREFLIGHT_KEY}
        )
        core.create_namespaced_secret(NAMESPACE, secret)
        body = {
            "image": "bench/agent:1",
            "port": 8000,
            "rollout": {"steps": [{"weight": 50}], "interval": "30s"},
            "model": {
                "provider": "anthropic",
                "name": PREFLIGHT_MODEL,
                "baseURL": fake.url,
                "credentials": {"secretRef": {"name": "model-key", "key": "k"}},
            },
        }
        for i in range(count):
            bench.harness.create(f"pf-{i}", body)
        for i in range(count):
            eventually(
                lambda n=f"pf-{i}": bench.status(n).get("phase") == "Ready",
                timeout=120,
                what="Ready",
            )
        calls = [r for r in fake.requests() if r.endpoint == "models.retrieve"]
        print(f"PREFLIGHT_CALLS: {len(calls)} (for {count} HDs sharing a key)")
        lookups = {
            r: operator.metric("harness_operator_preflight_lookups_total", {"result": r})
            for r in ("hit", "stale", "miss", "waiting")
        }
        total = sum(lookups.values())
        print(f"PREFLIGHT_HIT_RATE: {lookups['hit'] / total:.3f} ({int(total)} lookups)")
        spent = operator.metric("harness_operator_preflight_duration_seconds_sum")
        checks = operator.metric("harness_operator_preflight_duration_seconds_count")
        print(f"PREFLIGHT_MS: {1000 * spent / checks:.1f} ms (mean of {int(checks)} checks)")

        # A refused key holds a release; fixing the Secret releases it at once.
        fake.revoke_key(PREFLIGHT_KEY)
        fixed = "sk-bench-fixed-9d1c"
        secret.string_data = {"k": "sk-bench-refused-0000"}
        core.replace_namespaced_secret("model-key", NAMESPACE, secret)
        eventually(
            lambda: credentials_valid(bench.status("pf-0")) == "False",
            timeout=60,
            what="the release held",
        )
        fake.accept_key(fixed)
        secret.string_data = {"k": fixed}
        started = time.monotonic()
        core.replace_namespaced_secret("model-key", NAMESPACE, secret)
        eventually(lambda: bench.canary_weight("pf-0") > 0, timeout=60, interval=0.05)
        print(f"PREFLIGHT_FIX_TO_TRAFFIC: {time.monotonic() - started:.2f} s")
    finally:
        for i in range(count):
            with contextlib.suppress(Exception):
                bench.harness.delete(f"pf-{i}")
        fake.stop()


def main() -> int:
    started_cluster = not localcluster.is_running()
    state = localcluster.up()
    os.environ["KUBECONFIG"] = state.kubeconfig
    install_crds(ROOT)
    fresh_namespace(NAMESPACE)
    workdir = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    operator = OperatorProcess(
        state.kubeconfig,
        workdir / "operator.log",
        namespace=NAMESPACE,
        prometheus_url=state.prometheus_url,
        resync_seconds=10.0,
    )
    bench = Bench(state)
    api = config.new_client_from_config(config_file=state.kubeconfig)
    try:
        budget = 2 * SCRAPE_SECONDS + 1
        every: list[float] = []
        for label, interval in (("10s", "10s"), ("2m", "2m")):
            times = [bench.rollback_time(f"rbk-{label}-{i}", interval) for i in range(3)]
            every += times
            print(f"RBK_STEP_{label.upper()}_MEDIAN: {statistics.median(times):.2f} s")
            print(f"RBK_STEP_{label.upper()}_MAX: {max(times):.2f} s")
        rbk = max(every)  # the worst case is what the target bounds
        print(f"RBK: {rbk:.2f} s")
        print(f"RBK_RATIO: {rbk / budget:.2f}")
        took, ratio = bench.promotion_ratio("promo", [10, 25, 50, 75, 100], 10)
        print(f"PROMO_SECONDS: {took:.1f} s")
        print(f"PROMO: {ratio:.3f}")
        preflight_figures(bench, operator, client.CoreV1Api(api))
        operator.stop()  # the scale figures run an operator of their own
        scale_figures(state, bench.harness, workdir, int(os.environ.get("BENCH_SCALE_N", "100")))
    finally:
        operator.stop()
        localcluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        if started_cluster:
            localcluster.down(quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

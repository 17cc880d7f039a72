"""Benchmarks of the controller at scale (`make bench`; `BENCH_SCALE_N`, default 100; the
issue's figures are N=500 and N=1000).

- CONV_N: seconds for N HarnessDeployments created at once to converge (every generated
  object applied, every status written) divided by the seconds a raw client takes to create
  the same objects one by one (server-side apply, no operator). Target <= 1.5 at N=500.
- MEM_N: the operator's RSS once the N have converged. Target <= 150 MiB at N=1000.
- READS_PER_PASS: GETs of generated kinds per resync pass once converged, from the API
  server's audit log (target 0), and IDLEW: writes per HarnessDeployment-hour at rest
  (target 0), over the same window.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import localcluster
from harness_operator.api import HarnessDeploymentSpec
from harness_operator.kube import Kube
from harness_operator.render import HarnessRef, ReleaseState, render
from harness_operator.traffic import IstioRouter
from scenarios import Harnesses
from testbed import OperatorProcess, audit_requests, audit_writes, eventually, fresh_namespace

RAW_NAMESPACE = "harness-bench-raw"
NAMESPACE = "harness-bench-scale"
SPEC: dict[str, Any] = {"image": "bench/agent:1", "port": 8000, "replicas": 1}
RESYNC_SECONDS = 30.0


def raw_create_seconds(count: int) -> float:
    """A raw client creating what the operator would generate for `count` HDs."""
    fresh_namespace(RAW_NAMESPACE)
    kube = Kube()
    spec = HarnessDeploymentSpec.model_validate(SPEC)
    state = ReleaseState.at_rest(spec)
    started = time.monotonic()
    for i in range(count):
        hd = HarnessRef(name=f"h{i}", namespace=RAW_NAMESPACE, uid="")
        for obj in render(hd, spec, state, IstioRouter()).objects:
            obj["metadata"].pop("ownerReferences", None)
            kube.apply(obj)
    took = time.monotonic() - started
    localcluster.kubectl("delete", "namespace", RAW_NAMESPACE, "--wait=false", check=False)
    return took


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scale_figures(state: localcluster.State, bench: Harnesses, workdir: Path, count: int) -> None:
    raw = raw_create_seconds(count)
    harness = Harnesses(bench.custom, bench.kubectl, NAMESPACE)
    fresh_namespace(NAMESPACE)
    operator = OperatorProcess(
        state.kubeconfig,
        workdir / "operator-scale.log",
        namespace=NAMESPACE,
        prometheus_url=state.prometheus_url,
        resync_seconds=RESYNC_SECONDS,
    )
    custom = harness.custom
    try:
        started = time.monotonic()
        for i in range(count):
            harness.create(f"h{i}", SPEC)

        def converged() -> bool:
            items = custom.list_namespaced_custom_object(
                "harness.dev", "v1alpha1", NAMESPACE, "harnessdeployments"
            )["items"]
            done = [h for h in items if (h.get("status") or {}).get("observedGeneration") == 1]
            return len(done) == count

        eventually(converged, timeout=60 + 3 * count, interval=1.0, what=f"{count} HDs to converge")
        took = time.monotonic() - started
        print(f"CONV_{count}: {took / raw:.2f} ({took:.1f} s vs {raw:.1f} s raw)")
        print(f"MEM_{count}: {rss_mib(operator.proc.pid):.0f} MiB")

        def all_ready() -> bool:
            items = custom.list_namespaced_custom_object(
                "harness.dev", "v1alpha1", NAMESPACE, "harnessdeployments"
            )["items"]
            return sum((h.get("status") or {}).get("phase") == "Ready" for h in items) == count

        # At rest: every HD Ready (its pods up), before the idle window starts.
        eventually(all_ready, timeout=60 + 3 * count, interval=1.0, what=f"{count} HDs Ready")
        since = time.time()
        passes = operator.reconcile_passes()
        window = RESYNC_SECONDS + 5
        time.sleep(window)  # the measuring window: every HD resyncs at least once
        passes = operator.reconcile_passes() - passes
        reads = audit_requests(state.audit_log, NAMESPACE, since, frozenset({"get"}))
        writes = [
            w
            for w in audit_writes(state.audit_log, NAMESPACE, since)
            if w["objectRef"].get("resource") != "events"
        ]
        print(
            f"READS_PER_PASS: {len(reads) / max(passes, 1):.2f} ({len(reads)} in {passes} passes)"
        )
        print(f"IDLEW: {len(writes) / count / (window / 3600):.2f} writes per HD-hour")
    finally:
        operator.stop()
        localcluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)

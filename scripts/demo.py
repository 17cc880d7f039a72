"""`make demo`: harness-operator doing the real thing on the embedded local cluster.

1. starts the local cluster (control plane, kwok nodes, Istio CRDs, Prometheus) if needed,
2. installs the CRDs and runs the operator (its console script),
3. starts the traffic simulator, which follows the VirtualService weights and is scraped by
   Prometheus,
4. deploys a HarnessDeployment, then releases a healthy version that is promoted step by
   step, then a bad one (the canary's error rate jumps) that the operator rolls back on its
   own,
5. shows live progress, prints a summary with timings, and stops everything it started
   (unless DEMO_KEEP=1, to explore with kubectl and kubectl-harness afterwards).

Exits 0 when both releases ended as expected.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "cluster"), str(ROOT / "tests")]

from kubernetes import client, config
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

import localcluster
from harness_operator.cli.view import ReleaseView, render
from harness_operator.kube import Kube
from harness_operator.sim import TrafficSim
from scenarios import Harnesses, Kubectl
from testbed import OperatorProcess, Prometheus, fresh_namespace, install_crds

NAMESPACE = "harness-demo"
NAME = "pr-reviewer"
console = Console()

SPEC: dict[str, Any] = {
    "image": "ghcr.io/acme/pr-reviewer:1.4.0",
    "port": 8000,
    "replicas": 2,
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    "service": {"port": 80, "hosts": ["pr-reviewer.harness-demo.svc.cluster.local"]},
    "rollout": {
        "steps": [{"weight": 10}, {"weight": 25}, {"weight": 50}, {"weight": 75}],
        "interval": "5s",
    },
    "analysis": {
        "window": "20s",
        "checkInterval": "1s",
        "failureLimit": 2,
        "minRequests": 30,
        "checks": [
            {"name": "error-rate", "builtin": "errorRate", "max": 0.05},
            {"name": "latency-p95", "builtin": "latencyP95", "relativeToStable": {"max": 1.5}},
            {"name": "cost", "builtin": "costPerRequest", "relativeToStable": {"max": 1.25}},
        ],
    },
}


@dataclass
class Result:
    release: str
    expected: str
    outcome: str
    seconds: float
    detail: str

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected


class Demo:
    def __init__(self, state: localcluster.State) -> None:
        api = config.new_client_from_config(config_file=state.kubeconfig)
        kubectl = Kubectl(state.kubectl, state.kubeconfig)
        self.harness = Harnesses(client.CustomObjectsApi(api), kubectl, NAMESPACE)

    def hd(self) -> dict[str, Any]:
        return self.harness.get(NAME)

    def apply(self, spec: dict[str, Any]) -> None:
        """Create the HarnessDeployment, or update its spec when it exists."""
        err = self.harness.try_create(NAME, spec)
        if err is None:
            return
        if err.status != 409:
            raise err
        self.harness.patch_spec(NAME, spec)

    def follow(
        self, title: str, done: set[str], since_revision: str | None, limit: float
    ) -> dict[str, Any]:
        """Live view until the phase is in `done` (for a release other than `since_revision`)."""
        started = time.monotonic()
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while True:
                hd = self.hd()
                status = hd.get("status") or {}
                live.update(
                    Group(
                        f"[bold]{title}[/]  ({time.monotonic() - started:4.1f}s)",
                        render(ReleaseView.from_object(hd)),
                    )
                )
                finished = status.get("phase") in done and (
                    since_revision is None or status.get("canaryRevision") != since_revision
                )
                if finished or time.monotonic() - started > limit:
                    return hd
                time.sleep(0.25)


def run(demo: Demo, sim: TrafficSim) -> list[Result]:
    results = []

    console.rule("1. deploy pr-reviewer 1.4.0")
    started = time.monotonic()
    demo.apply(SPEC)
    hd = demo.follow("deploying", {"Ready"}, None, 120)
    stable = (hd.get("status") or {}).get("stableRevision", "")
    results.append(
        Result(
            "deploy 1.4.0",
            "Ready",
            hd["status"].get("phase", "?"),
            time.monotonic() - started,
            f"stable revision {stable}",
        )
    )

    console.rule("2. release 1.5.0 — a healthy canary")
    time.sleep(5)  # let the stable track build up a window of metrics
    started = time.monotonic()
    demo.apply({**SPEC, "image": "ghcr.io/acme/pr-reviewer:1.5.0"})
    time.sleep(1)
    hd = demo.follow("releasing 1.5.0", {"Ready", "RolledBack"}, stable, 180)
    status = hd["status"]
    results.append(
        Result(
            "release 1.5.0 (healthy)",
            "Ready",
            status.get("phase", "?"),
            time.monotonic() - started,
            f"promoted through 10/25/50/75 %, stable now {status.get('stableRevision')}",
        )
    )
    stable = status.get("stableRevision", stable)

    console.rule("3. release 1.6.0 — its error rate jumps to 30 %")
    sim.set_track("canary", error_rate=0.30)
    started = time.monotonic()
    demo.apply({**SPEC, "image": "ghcr.io/acme/pr-reviewer:1.6.0"})
    time.sleep(1)
    hd = demo.follow("releasing 1.6.0", {"RolledBack", "Ready"}, stable, 180)
    status = hd["status"]
    rollback = status.get("rollback") or {}
    results.append(
        Result(
            "release 1.6.0 (bad)",
            "RolledBack",
            status.get("phase", "?"),
            time.monotonic() - started,
            f"{rollback.get('check')} = {float(rollback.get('value') or 0):.3f} breached"
            f" max {rollback.get('max')}; traffic back on {stable}",
        )
    )
    sim.set_track("canary", error_rate=0.0)
    return results


def summary(results: list[Result]) -> None:
    table = Table(title="harness-operator demo")
    for column in ("step", "expected", "outcome", "time", "detail"):
        table.add_column(column)
    for r in results:
        colour = "green" if r.ok else "red"
        table.add_row(
            r.release, r.expected, f"[{colour}]{r.outcome}[/]", f"{r.seconds:.1f}s", r.detail
        )
    console.print(table)


def main() -> int:
    keep = os.environ.get("DEMO_KEEP") == "1"
    started_cluster = not localcluster.is_running()
    console.print("[bold]starting the local cluster[/] (first run builds Kubernetes from source)")
    state = localcluster.up()
    install_crds(ROOT)
    fresh_namespace(NAMESPACE)
    os.environ["KUBECONFIG"] = state.kubeconfig
    logdir = Path(tempfile.mkdtemp(prefix="harness-demo-"))
    operator = OperatorProcess(
        state.kubeconfig,
        logdir / "operator.log",
        namespace=NAMESPACE,
        prometheus_url=state.prometheus_url,
        resync_seconds=10.0,
    )
    prometheus = Prometheus(state.prometheus_url, Path(state.prometheus_targets_dir))
    sim = TrafficSim(Kube(), NAMESPACE, NAME, rps=60.0, seed=1)
    target = prometheus.add_target(sim.start(), {"suite": "demo"})
    console.print(f"operator log: {operator.log_path}")
    ok = False
    try:
        results = run(Demo(state), sim)
        summary(results)
        ok = all(r.ok for r in results)
    finally:
        prometheus.remove_target(target)
        sim.stop()
        if keep:
            # Leave the operator running and keep traffic flowing; `make cluster-down`
            # stops both with the cluster.
            localcluster.adopt(operator.proc.pid)
            port = localcluster.free_port()
            traffic = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "harness_operator.sim",
                    "--namespace",
                    NAMESPACE,
                    "--name",
                    NAME,
                    "--port",
                    str(port),
                    "--rps",
                    "30",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            localcluster.adopt(traffic.pid)
            prometheus.add_target(port, {"suite": "demo"})
            console.print(
                f"\nkept running (operator, traffic, cluster). Explore with:\n"
                f"  export KUBECONFIG={state.kubeconfig}\n"
                f"  kubectl get hd,deploy,svc,vs -n {NAMESPACE}\n"
                f"  PATH=$PWD/.venv/bin:$PATH kubectl harness status {NAME} -n {NAMESPACE}\n"
                "then `make cluster-down` to stop everything."
            )
        else:
            operator.stop()
            localcluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
            if started_cluster:
                localcluster.down(quiet=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: harness-operator releasing a real agent harness on the embedded local cluster.

1. starts the local cluster (control plane, kwok nodes, Istio CRDs, Prometheus) if needed,
   builds the reference harness's image with podman (cached), installs the CRDs and runs
   the operator (its console script);
2. starts the local model API (the one faked component), the pod runner (a real container
   of `examples/harness-app` per ready pod, scraped by Prometheus with its pod's labels),
   the weight-following mesh proxy and a steady task load through it;
3. deploys the harness on model A, then releases
   - a prompt change (a ConfigMap edit), promoted step by step;
   - a model change whose cost per task doubles, rolled back on cost by the analysis;
   then a burn-rate spike walks a (one-minute) spend budget's ladder up to the kill switch,
   which lifts at the window's reset; and a rotation of the model key to a key the provider
   refuses is held by the credential preflight, with no canary pods and no traffic;
4. shows live progress, prints a summary with timings, and stops everything it started
   (unless DEMO_KEEP=1, to explore with kubectl and kubectl-harness afterwards).

Exits 0 when every scene ended as expected.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "cluster"), str(ROOT / "tests")]

from kubernetes import client, config
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

import images
import localcluster
from fakeapi import FakeModelAPIClient, ModelBehaviour
from harness_operator.cli.view import ReleaseView, render
from meshproxy import MeshProxy, TaskLoad
from podrunner import PodRunner
from scenarios import Harnesses, Kubectl
from testbed import OperatorProcess, Prometheus, canary_weight, fresh_namespace, install_crds

NAMESPACE = "harness-demo"
NAME = "pr-reviewer"
IMAGE = "localhost/harness-app:1.0"
MODEL_A, MODEL_B = "claude-sonnet-4-6", "claude-opus-4-6"
GOOD_KEY = "sk-demo-good-7a3e91c2"
BAD_KEY = "sk-demo-revoked-0f4b6d8e"
PROMPT_V1 = "You review pull requests. Be brief."
PROMPT_V2 = "You review pull requests. Be brief, and cite the lines you mean."
console = Console()


def spec(base_url: str, model: str = MODEL_A) -> dict[str, Any]:
    return {
        "image": IMAGE,
        "port": 8080,
        "replicas": 2,
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "env": [{"name": "HARNESS_MAX_CONCURRENCY", "value": "8"}],
        "model": {
            "provider": "anthropic",
            "name": model,
            "baseURL": base_url,
            "credentials": {"secretRef": {"name": "anthropic", "key": "api-key"}},
            "systemPromptRef": {"name": "prompts", "key": "system"},
        },
        "rollout": {
            "steps": [{"weight": 10}, {"weight": 25}, {"weight": 50}, {"weight": 75}],
            "interval": "6s",
            "progressDeadlineSeconds": 120,
        },
        "analysis": {
            "window": "20s",
            "checkInterval": "1s",
            "failureLimit": 2,
            "minRequests": 10,
            "minTasks": 5,
            "harnessChecks": {"disabled": ["task-latency-p95", "time-to-first-token-p95"]},
            "checks": [
                {"name": "error-rate", "builtin": "errorRate", "max": 0.05},
                {"name": "latency-p95", "builtin": "latencyP95", "relativeToStable": {"max": 2}},
            ],
            # And, because the spec names a model, the default harness checks: cost and
            # output tokens per task, task errors, upstream errors and tool failures, canary
            # against stable (docs/metrics.md). The demo's tasks take a tenth of a second,
            # so a p95 over the few of them a step sees jumps a histogram bucket at a time:
            # its latency is judged per request above, with more room.
        },
    }


@dataclass
class Result:
    scene: str
    expected: str
    outcome: str
    seconds: float
    detail: str

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected


class Demo:
    def __init__(self, state: localcluster.State, fake: FakeModelAPIClient) -> None:
        api = config.new_client_from_config(config_file=state.kubeconfig)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.harness = Harnesses(self.custom, Kubectl(state.kubectl, state.kubeconfig), NAMESPACE)
        self.fake = fake

    def hd(self) -> dict[str, Any]:
        return self.harness.get(NAME)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.hd().get("status") or {}
        return result

    def put(self, kind: str, name: str, data: dict[str, str]) -> None:
        meta = client.V1ObjectMeta(name=name)
        if kind == "Secret":
            body: Any = client.V1Secret(metadata=meta, string_data=data)
            create, replace = (
                self.core.create_namespaced_secret,
                self.core.replace_namespaced_secret,
            )
        else:
            body = client.V1ConfigMap(metadata=meta, data=data)
            create = self.core.create_namespaced_config_map
            replace = self.core.replace_namespaced_config_map
        try:
            create(NAMESPACE, body)
        except client.ApiException as err:
            if err.status != 409:
                raise
            replace(name, NAMESPACE, body)

    def follow(
        self, title: str, done: Callable[[dict[str, Any]], bool], limit: float, extra: str = ""
    ) -> dict[str, Any]:
        """Live view until `done(status)`, or `limit` seconds."""
        started = time.monotonic()
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while True:
                hd = self.hd()
                status = hd.get("status") or {}
                live.update(
                    Group(
                        f"[bold]{title}[/]  ({time.monotonic() - started:4.1f}s){extra}",
                        render(ReleaseView.from_object(hd)),
                    )
                )
                if done(status) or time.monotonic() - started > limit:
                    return hd
                time.sleep(0.25)


def released(previous: str) -> Callable[[dict[str, Any]], bool]:
    """The release of something other than `previous` ended (promoted or rolled back)."""
    return lambda s: (
        s.get("canaryRevision") != previous
        and s.get("phase")
        in (
            "Ready",
            "RolledBack",
        )
    )


def run(demo: Demo, runner: PodRunner, load: TaskLoad, proxy: MeshProxy) -> list[Result]:
    results = []
    fake_url = demo.fake.url

    console.rule(f"1. deploy pr-reviewer on {MODEL_A}")
    started = time.monotonic()
    demo.put("Secret", "anthropic", {"api-key": GOOD_KEY})
    demo.put("ConfigMap", "prompts", {"system": PROMPT_V1})
    demo.harness.create(NAME, spec(fake_url))
    hd = demo.follow("deploying", lambda s: s.get("phase") == "Ready", 120)
    status = hd.get("status") or {}
    runner.wait_for(
        lambda pods: len([p for p in pods if p.ready]) >= 2, timeout=60, what="the containers"
    )
    load.start()  # the tasks flow once the harness answers
    results.append(
        Result(
            "deploy",
            "Ready",
            status.get("phase", "?"),
            time.monotonic() - started,
            f"{status.get('stableModel')}, revision {status.get('stableRevision')},"
            " credential verified before Ready",
        )
    )
    stable = str(status.get("stableRevision", ""))

    console.rule("2. release a prompt change (ConfigMap edit)")
    time.sleep(8)  # let Prometheus see a window of the stable track's tasks
    started = time.monotonic()
    demo.put("ConfigMap", "prompts", {"system": PROMPT_V2})
    hd = demo.follow("releasing the new prompt", released(stable), 180)
    status = hd["status"]
    results.append(
        Result(
            "prompt change",
            "Ready",
            status.get("phase", "?"),
            time.monotonic() - started,
            f"promoted through 10/25/50/75 %, stable now {status.get('stableRevision')}",
        )
    )
    stable = str(status.get("stableRevision", stable))

    console.rule(f"3. release a model change to {MODEL_B}: its cost per task doubles")
    started = time.monotonic()
    demo.harness.patch_spec(NAME, {"model": spec(fake_url, MODEL_B)["model"]})
    hd = demo.follow(f"releasing {MODEL_B}", released(stable), 180)
    status = hd["status"]
    rollback = status.get("rollback") or {}
    cost = next(
        (
            r
            for r in (status.get("lastAnalysis") or {}).get("results", [])
            if r["name"] == "cost-per-task"
        ),
        {},
    )
    results.append(
        Result(
            f"model change to {MODEL_B}",
            "RolledBack",
            status.get("phase", "?"),
            time.monotonic() - started,
            f"{rollback.get('check')}: canary ${float(cost.get('value') or 0):.4f} vs stable"
            f" ${float(cost.get('stableValue') or 0):.4f} per task"
            f" (max {rollback.get('max')}x); traffic back on {stable}",
        )
    )
    demo.harness.patch_spec(NAME, {"model": spec(fake_url, MODEL_A)["model"]})
    demo.follow("back to the stable model", lambda s: s.get("phase") == "Ready", 30)

    results.append(budget_scene(demo, load))

    console.rule("5. rotate the key to one the provider refuses")
    started = time.monotonic()
    demo.put("Secret", "anthropic", {"api-key": BAD_KEY})
    canary_traffic = []

    def held(status: dict[str, Any]) -> bool:
        canary_traffic.append(canary_weight(demo.custom, NAMESPACE, NAME))
        credentials = next(
            (c for c in status.get("conditions") or [] if c["type"] == "CredentialsValid"), {}
        )
        return credentials.get("status") == "False" and len(canary_traffic) > 40

    hd = demo.follow("held by the credential preflight", held, 60)
    status = hd["status"]
    credentials = next(
        (c for c in status.get("conditions") or [] if c["type"] == "CredentialsValid"), {}
    )
    outcome = (
        "Held"
        if status.get("stage") == "Preflight" and not any(canary_traffic)
        else str(status.get("phase"))
    )
    results.append(
        Result(
            "bad key",
            "Held",
            outcome,
            time.monotonic() - started,
            f"CredentialsValid={credentials.get('status')} ({credentials.get('reason')}), canary"
            f" weight {max(canary_traffic or [0])} %, stable {status.get('stableRevision')}"
            " keeps serving",
        )
    )
    served = proxy.stats()
    console.print(
        f"tasks: {load.outcomes[200]} answered, by track {served};"
        f" model API calls: {len(demo.fake.requests())}"
    )
    return results


BUDGET_USD = 2.5
"""Per one-minute window (shortened for the demo; real budgets use hour, day, month)."""


def budget_scene(demo: Demo, load: TaskLoad) -> Result:
    console.rule(f"4. a burn-rate spike against a ${BUDGET_USD:g}-per-minute budget")
    demo.harness.patch_spec(
        NAME,
        {"budget": {"limits": [{"window": "1m", "usd": BUDGET_USD}], "checkInterval": "1s"}},
    )
    # Start the spike at the beginning of a window, so it walks the whole ladder in one.
    first = demo.follow("reading spend", lambda s: bool((s.get("budget") or {}).get("windows")), 20)
    resets = _resets_at(first["status"]["budget"])
    if resets - time.time() < 30:
        demo.follow("waiting for a window to begin", lambda s: time.time() > resets + 1, 40)
    started = time.monotonic()
    steps: list[str] = []
    rate = load.rate
    load.set_rate(24.0)

    def walked(status: dict[str, Any]) -> bool:
        step = (status.get("budget") or {}).get("step")
        if step and (not steps or steps[-1] != step):
            steps.append(step)
        return step == "Stopped"

    hd = demo.follow("the spike walks the ladder", walked, 70, extra=" (load 24 tasks/s)")
    refused = load.outcomes[503]
    stopped_after = time.monotonic() - started
    budget = hd["status"].get("budget") or {}
    resets = _resets_at(budget)
    hd = demo.follow(
        "spending stopped by the kill switch; waiting for the window to reset",
        lambda s: (s.get("budget") or {}).get("step") == "Within",
        resets - time.time() + 15,
    )
    load.set_rate(rate)
    lifted = (hd["status"].get("budget") or {}).get("step") == "Within"
    walked_all = steps[-4:] == ["Warning", "PromotionBlocked", "CanaryAborted", "Stopped"]
    demo.harness.patch_spec(NAME, {"budget": None})
    return Result(
        "budget spike",
        "Stopped, lifted",
        "Stopped, lifted" if walked_all and lifted else f"{' > '.join(steps)}",
        time.monotonic() - started,
        f"{' > '.join(steps)} in {stopped_after:.0f}s; {load.outcomes[503] - refused} tasks"
        " refused (503) while stopped, pods ready; lifted at the window reset",
    )


def _resets_at(budget: dict[str, Any]) -> float:
    (window,) = budget["windows"]
    return datetime.fromisoformat(window["resetsAt"].replace("Z", "+00:00")).timestamp()


def summary(results: list[Result]) -> None:
    table = Table(title="harness-operator demo: the reference harness on a real data path")
    for column in ("scene", "expected", "outcome", "time", "detail"):
        table.add_column(column)
    for r in results:
        colour = "green" if r.ok else "red"
        table.add_row(
            r.scene, r.expected, f"[{colour}]{r.outcome}[/]", f"{r.seconds:.1f}s", r.detail
        )
    console.print(table)


def start_fake(logdir: Path) -> tuple[subprocess.Popen[bytes], FakeModelAPIClient]:
    """The model API in its own process, so it can outlive the demo (DEMO_KEEP)."""
    state_file = logdir / "fakeapi.json"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cluster" / "fakeapi.py"), "--state-file", str(state_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(logdir / "fakeapi.log").open("ab"),
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the fake model API did not start; see {logdir}/fakeapi.log")
        time.sleep(0.1)
    fake = FakeModelAPIClient(json.loads(state_file.read_text())["url"])
    fake.accept_key(GOOD_KEY)
    fake.set_model(MODEL_A, ModelBehaviour(latency_seconds=0.05, output_tokens=400, tool_turns=1))
    # Model B costs 5/25 USD per million tokens against A's 3/15, and writes a fifth more:
    # its cost per task is about twice A's.
    fake.set_model(MODEL_B, ModelBehaviour(latency_seconds=0.05, output_tokens=480, tool_turns=1))
    return proc, fake


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        return serve(sys.argv[2])
    keep = os.environ.get("DEMO_KEEP") == "1"
    started_cluster = not localcluster.is_running()
    console.print("[bold]starting the local cluster[/] (first run builds Kubernetes from source)")
    state = localcluster.up()
    console.print("[bold]building the reference harness image[/] (cached after the first run)")
    harness_image = images.harness_image()
    install_crds(ROOT)
    fresh_namespace(NAMESPACE)
    os.environ["KUBECONFIG"] = state.kubeconfig
    logdir = Path(tempfile.mkdtemp(prefix="harness-demo-"))
    fake_proc, fake = start_fake(logdir)
    operator = OperatorProcess(
        state.kubeconfig,
        logdir / "operator.log",
        namespace=NAMESPACE,
        prometheus_url=state.prometheus_url,
        resync_seconds=10.0,
    )
    prometheus = Prometheus(state.prometheus_url, Path(state.prometheus_targets_dir))
    api = config.new_client_from_config(config_file=state.kubeconfig)
    runner = PodRunner(
        api, NAMESPACE, prometheus.targets_dir, {IMAGE: harness_image}, logdir / "pods"
    ).start()
    demo = Demo(state, fake)
    proxy = MeshProxy(_vs_reader(demo.custom), NAMESPACE, NAME, runner).start()
    load = TaskLoad(proxy.url, rate=8.0, concurrency=16, max_seconds=900)
    console.print(f"logs: {logdir}")
    ok = False
    try:
        results = run(demo, runner, load, proxy)
        summary(results)
        ok = all(r.ok for r in results)
    finally:
        load.stop()
        proxy.stop()
        runner.stop()
        if keep:
            localcluster.adopt(operator.proc.pid)
            localcluster.adopt(fake_proc.pid)
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(logdir)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=(logdir / "serve.log").open("ab"),
                start_new_session=True,
            )
            localcluster.adopt(server.pid)
            console.print(
                f"\nkept running (operator, model API, harness containers, task load)."
                f" Explore with:\n"
                f"  export KUBECONFIG={state.kubeconfig}\n"
                f"  kubectl get hd,deploy,svc,vs -n {NAMESPACE}\n"
                f"  PATH=$PWD/.venv/bin:$PATH kubectl harness status {NAME} -n {NAMESPACE}\n"
                "then `make cluster-down` to stop everything."
            )
        else:
            operator.stop()
            os.killpg(fake_proc.pid, signal.SIGTERM)
            fake_proc.wait(timeout=10)
            localcluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
            if started_cluster:
                localcluster.down(quiet=True)
    return 0 if ok else 1


def _vs_reader(custom: client.CustomObjectsApi) -> Callable[[], dict[str, Any] | None]:
    def read() -> dict[str, Any] | None:
        try:
            vs: dict[str, Any] = custom.get_namespaced_custom_object(
                "networking.istio.io", "v1", NAMESPACE, "virtualservices", NAME
            )
        except client.ApiException:
            return None
        return vs

    return read


def serve(logdir: str) -> int:
    """DEMO_KEEP: keep the harness containers, the mesh and a light load running until
    `make cluster-down` stops this process."""
    state = localcluster.load_state()
    assert state is not None
    api = config.new_client_from_config(config_file=state.kubeconfig)
    runner = PodRunner(
        api,
        NAMESPACE,
        Path(state.prometheus_targets_dir),
        {IMAGE: images.harness_image()},
        Path(logdir) / "pods",
    ).start()
    proxy = MeshProxy(_vs_reader(client.CustomObjectsApi(api)), NAMESPACE, NAME, runner).start()
    load = TaskLoad(proxy.url, rate=2.0, concurrency=8, max_seconds=4 * 3600).start()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    while not stop["now"]:
        time.sleep(0.5)
    load.stop()
    proxy.stop()
    runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

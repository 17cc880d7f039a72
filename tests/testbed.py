"""Test helpers for the local test bed that are not fixtures: Prometheus targets and
queries, polling, and loopback exporters."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

import localcluster
from harness_operator.render import HarnessRef
from harness_operator.traffic import observe_route

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.5, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last={last!r}")


def stays(probe: Callable[[], T], *, until: float, interval: float = 0.2, what: str = "") -> T:
    """Poll `probe` until the wall-clock time `until` (epoch seconds) and fail as soon as its
    answer differs from the first one; return that answer. For "nothing happens" checks:
    `until` must lie past the moment the thing would have happened if it were going to."""
    first = probe()
    while time.time() < until:
        time.sleep(interval)
        now = probe()
        if now != first:
            raise AssertionError(f"{what or probe} changed from {first!r} to {now!r}")
    return first


def epoch(timestamp: str) -> float:
    """Epoch seconds of an RFC 3339 timestamp as the apiserver and the operator write them."""
    return _epoch(timestamp)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """The test bed's Prometheus: register loopback scrape targets and run queries."""

    def __init__(self, url: str, targets_dir: Path) -> None:
        self.url = url
        self.targets_dir = targets_dir

    def add_target(self, port: int, labels: dict[str, str] | None = None) -> Path:
        """Scrape 127.0.0.1:port (file_sd; picked up within a second). Returns the file to
        pass to `remove_target`."""
        path = self.targets_dir / f"target-{uuid.uuid4().hex[:8]}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": labels or {}}]))
        tmp.rename(path)  # atomic: Prometheus never reads half a file
        return path

    def remove_target(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def query(self, expr: str) -> list[dict[str, Any]]:
        qs = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
OPERATOR_AGENTS = ("harness-operator/", "kopf/")


def audit_writes(
    audit_log: str, namespace: str, since: float, agents: tuple[str, ...] = OPERATOR_AGENTS
) -> list[dict[str, Any]]:
    """Write requests the operator sent for objects in `namespace` after `since` (epoch
    seconds), read from the apiserver's own audit log: independent of the operator."""
    return audit_requests(audit_log, namespace, since, WRITE_VERBS, agents)


def audit_requests(
    audit_log: str,
    namespace: str,
    since: float,
    verbs: frozenset[str],
    agents: tuple[str, ...] = OPERATOR_AGENTS,
) -> list[dict[str, Any]]:
    """Requests with `verbs` the operator sent for objects in `namespace` after `since`, from
    the audit log (which records writes, and GETs of the kinds the operator generates)."""
    found = []
    with open(audit_log, encoding="utf-8") as fh:
        for line in fh:
            entry = json.loads(line)
            ref = entry.get("objectRef") or {}
            if (
                entry.get("verb") in verbs
                and ref.get("namespace") == namespace
                and str(entry.get("userAgent", "")).startswith(agents)
                and _epoch(entry["requestReceivedTimestamp"]) >= since
            ):
                found.append(entry)
    return found


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class OperatorProcess:
    """`harness-operator run` as a child process against the test bed, with its log in a
    file (shown by `tail()` when a test fails)."""

    def __init__(
        self,
        kubeconfig: str,
        log_path: Path,
        namespace: str,
        prometheus_url: str,
        resync_seconds: float = 2.0,
        source: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.extra_env = dict(env or {})
        self.source = source
        """Run the operator package found here (e.g. an older release) instead of ours."""
        self.namespace = namespace
        self.prometheus_url = prometheus_url
        self.resync_seconds = resync_seconds
        self.log_path = log_path
        self.start()

    def start(self) -> None:
        """Start (or restart, after `kill`) the operator process."""
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "HARNESS_RESYNC_SECONDS": str(self.resync_seconds),
            **self.extra_env,
        }
        if self.prometheus_url:
            env["HARNESS_PROMETHEUS_URL"] = self.prometheus_url
        else:
            env.pop("HARNESS_PROMETHEUS_URL", None)
        self._log = self.log_path.open("ab")
        command = [str(Path(sys.executable).parent / "harness-operator")]
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source)
            command = [sys.executable, "-m", "harness_operator"]
        self.proc = subprocess.Popen(
            [
                *command,
                "run",
                "--namespace",
                self.namespace,
                "--liveness",
                f"http://127.0.0.1:{self.liveness_port}/healthz",
                "--metrics-address",
                f"127.0.0.1:{self.metrics_port}",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        eventually(self.healthy, timeout=60, what="operator liveness")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye — as a crashed or evicted pod."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()

    def healthy(self) -> bool:
        assert self.proc.poll() is None, f"operator exited:\n{self.tail()}"
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Sum of a metric's samples matching `labels`, from the operator's /metrics."""
        return sum(value for _, value in self.samples(name, labels))

    def samples(
        self, name: str | None = None, labels: dict[str, str] | None = None
    ) -> list[tuple[dict[str, str], float]]:
        """The operator's /metrics samples named `name` (any name when None) whose labels
        include `labels`, each as (all its labels, value): absent series are no samples,
        unlike `metric`'s sum of 0."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        found = []
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (name is None or sample.name == name) and all(
                    sample.labels.get(k) == v for k, v in (labels or {}).items()
                ):
                    found.append((dict(sample.labels), float(sample.value)))
        return found

    def reconcile_passes(self) -> int:
        """Reconcile passes this process has completed, status write and Events included."""
        return int(self.metric("harness_operator_reconcile_duration_seconds_count"))

    def tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def canary_weight(custom: Any, namespace: str, name: str) -> int:
    """The canary's share of the default route, read from the live VirtualService the way
    the operator reads it back."""
    vs = custom.get_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", name
    )
    route = observe_route(HarnessRef(name=name, namespace=namespace, uid=""), vs)
    return route.canary_weight if route is not None else 0


def install_crds(root: Path) -> None:
    """Apply the generated CRDs (server-side: they are large) and wait until served; KEDA's
    too (the test bed's third-party CRDs, for a cluster started before they were added)."""
    localcluster.install_keda_crds()
    localcluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(root / "crds"))
    localcluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


def fresh_namespace(namespace: str) -> None:
    """Create `namespace` enforcing PodSecurity `restricted`, after waiting out a previous
    run's namespace of the same name that is still terminating."""
    localcluster.kubectl(
        "wait", "--for=delete", f"namespace/{namespace}", "--timeout=90s", check=False
    )
    localcluster.kubectl("create", "namespace", namespace, check=False)
    localcluster.kubectl(
        "label",
        "--overwrite",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
    )

#!/usr/bin/env python3
"""The embedded local test bed: a real Kubernetes control plane plus Prometheus, on loopback.

etcd, kube-apiserver (RBAC + admission), kube-controller-manager, kube-scheduler and
kwok-controller run as local processes through kwokctl's binary runtime, from binaries
that `build.sh` compiled from Go modules. Fake nodes are created by us. The real Istio
CRDs come from the istio.io/api module cache. Prometheus (Debian package) scrapes static
127.0.0.1 targets listed in file_sd files that tests write.

Every socket binds 127.0.0.1 and nothing dials a node or pod IP: those are data only.

kwok plays the kubelet with Stages we define here (`kwok_stages`): kwokctl's default set,
except that pods which the pod runner (podrunner.py) runs to completion are not completed
by kwok. `up` restarts a running test bed whose configuration is not the current one.

Usage: localcluster.py up|down|status|env   (stdlib only, so any python3 runs it)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLUSTER_NAME = "harness-dev"
NODE_COUNT = 2
SCRAPE_INTERVAL_SECONDS = 1


def _versions() -> dict[str, str]:
    out = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


VERSIONS = _versions()
CACHE = Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness-operator"))
RUN_DIR = Path(os.environ.get("HARNESS_RUN_DIR", CACHE / "run" / CLUSTER_NAME))
KWOK_WORKDIR = RUN_DIR / "kwok"
STATE_FILE = RUN_DIR / "state.json"


def _bin(*parts: str) -> Path:
    return CACHE.joinpath(*parts)


K8S_DIR = _bin(f"k8s-{VERSIONS['K8S_VERSION']}")
KWOKCTL = _bin(f"kwok-{VERSIONS['KWOK_VERSION']}", "kwokctl")
KWOK = _bin(f"kwok-{VERSIONS['KWOK_VERSION']}", "kwok")
ETCD = _bin(f"etcd-{VERSIONS['ETCD_VERSION']}", "etcd")
KUBECTL = _bin(f"kubectl-layer-{VERSIONS['KUBECTL_LAYER_VERSION']}", "kubectl")
HELM = _bin(f"kubectl-layer-{VERSIONS['KUBECTL_LAYER_VERSION']}", "helm")
PROMETHEUS = _bin(f"prometheus-{VERSIONS['PROMETHEUS_DEB_VERSION']}", "usr", "bin", "prometheus")
ISTIO_CRDS = _bin(f"istio-crds-{VERSIONS['ISTIO_API_VERSION']}.yaml")
KEDA_CRDS = _bin(f"keda-crds-{VERSIONS['KEDA_VERSION']}")


@dataclass
class State:
    """What a running test bed looks like; written to state.json for tests and tools."""

    kubeconfig: str
    prometheus_url: str
    prometheus_pid: int
    prometheus_targets_dir: str
    audit_log: str
    kubectl: str
    helm: str
    config_hash: str = ""
    """`config_hash()` of the configuration the test bed was started with."""


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kwok_env() -> dict[str, str]:
    env = dict(os.environ)
    env["KWOK_WORKDIR"] = str(KWOK_WORKDIR)
    # Never let kwokctl or kubectl reach for the user's own kubeconfig.
    env["KUBECONFIG"] = str(RUN_DIR / "kubeconfig")
    return env


def kubectl(
    *args: str, check: bool = True, stdin: str | None = None, timeout: float | None = None
) -> str:
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(RUN_DIR / "kubeconfig"), *args],
        check=False,
        text=True,
        capture_output=True,
        input=stdin,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout or ""


def ensure_built() -> None:
    subprocess.run(["bash", str(HERE / "build.sh"), "all"], check=True)


def load_state() -> State | None:
    try:
        return State(**json.loads(STATE_FILE.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def apiserver_healthy() -> bool:
    if not (RUN_DIR / "kubeconfig").exists():
        return False
    return kubectl("get", "--raw", "/readyz", check=False, timeout=20).strip() == "ok"


def prometheus_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=3) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def is_up() -> bool:
    """The test bed answers, whatever configuration it was started with."""
    state = load_state()
    return state is not None and apiserver_healthy() and prometheus_healthy(state.prometheus_url)


def is_current(state: State) -> bool:
    """Started with the configuration this file describes now (kwok's stages, the audit
    policy, the component flags)? A test bed started before a change must be restarted."""
    return state.config_hash == config_hash()


def is_running() -> bool:
    """Up and current: what tests, the demo and the benchmarks may reuse as it is."""
    state = load_state()
    return state is not None and is_current(state) and is_up()


AUDIT_POLICY = {
    # Writes, and reads of generated kinds, at Metadata level: tests count the operator's.
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        # Heartbeats of the fake nodes and leader leases are noise for that purpose.
        {"level": "None", "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
        {"level": "None", "resources": [{"group": "", "resources": ["nodes", "nodes/status"]}]},
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        # Reads of the kinds the operator generates: tests count the operator's GETs.
        {
            "level": "Metadata",
            "verbs": ["get"],
            "resources": [
                {"group": "apps", "resources": ["deployments"]},
                {"group": "", "resources": ["services"]},
                {"group": "autoscaling", "resources": ["horizontalpodautoscalers"]},
                {"group": "policy", "resources": ["poddisruptionbudgets"]},
                {
                    "group": "networking.istio.io",
                    "resources": ["virtualservices", "destinationrules"],
                },
            ],
        },
        {"level": "None"},
    ],
}


POD_RUNNER_LABEL = "harness.dev/name"
"""A pod that carries this label and is owned by a Job is run to completion by the pod
runner (podrunner.py), which then writes its terminal status; kwok must not complete it."""


def _stage(
    name: str, kind: str, selector: list[dict[str, object]], **spec: object
) -> dict[str, object]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": kind},
            "selector": {"matchExpressions": selector},
            **spec,
        },
    }


def _expr(key: str, operator: str, *values: str) -> dict[str, object]:
    """A kwok selector requirement; `key` is a jq query on the object."""
    expr: dict[str, object] = {"key": key, "operator": operator}
    if values:
        expr["values"] = list(values)
    return expr


_READY = '.status.conditions.[] | select( .type == "Ready" ) | .status'

# Status templates are Go templates rendered by kwok (its functions: Now, Quote, YAML,
# Version, NodeConditions, NodeIP, NodeName, NodePort, NodeIPsWith, PodIPsWith, plus
# sprig's), and applied as a strategic merge patch of the status subresource. They produce
# the statuses of kwokctl's default stages (kwok v0.8.0, the "fast" pod stages).

_NODE_CONDITIONS = """\
{{ $now := Now }}
{{ $since := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
{{ end }}
{{ $have := dict }}
{{ range .status.addresses }}{{ $_ := set $have .type true }}{{ end }}
{{ $missing := list }}
{{ if not (hasKey $have "InternalIP") }}{{ with NodeIP }}
{{ $missing = append $missing (dict "type" "InternalIP" "address" .) }}
{{ end }}{{ end }}
{{ if not (hasKey $have "Hostname") }}{{ with NodeName }}
{{ $missing = append $missing (dict "type" "Hostname" "address" .) }}
{{ end }}{{ end }}
{{ with $missing }}
addresses: {{ YAML . 1 }}
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
"""

_NODE_INITIALIZE = (
    _NODE_CONDITIONS
    + """\
{{ if not .status.allocatable }}
allocatable: {cpu: 1k, memory: 1Ti, pods: 1M}
{{ end }}
{{ if not .status.capacity }}
capacity: {cpu: 1k, memory: 1Ti, pods: 1M}
{{ end }}
{{ $info := .status.nodeInfo }}
{{ $kwok := printf "kwok-%s" Version }}
nodeInfo:
  architecture: {{ or $info.architecture "amd64" | Quote }}
  bootID: {{ or $info.bootID "" | Quote }}
  containerRuntimeVersion: {{ or $info.containerRuntimeVersion $kwok | Quote }}
  kernelVersion: {{ or $info.kernelVersion $kwok | Quote }}
  kubeProxyVersion: {{ or $info.kubeProxyVersion $kwok | Quote }}
  kubeletVersion: {{ or $info.kubeletVersion $kwok | Quote }}
  machineID: {{ or $info.machineID "" | Quote }}
  operatingSystem: {{ or $info.operatingSystem "linux" | Quote }}
  osImage: {{ or $info.osImage "" | Quote }}
  systemUUID: {{ or $info.systemUUID "" | Quote }}
phase: Running
"""
)

_POD_READY = """\
{{ $now := Now }}
conditions:
{{ range list "Initialized" "Ready" "ContainersReady" }}
- type: {{ . | Quote }}
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
{{ range .spec.readinessGates }}
- type: {{ .conditionType | Quote }}
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  restartCount: 0
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  restartCount: 0
{{ if eq .restartPolicy "Always" }}
  started: true
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ else }}
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $hostNetwork := or .spec.hostNetwork false }}
{{ $uid := or .metadata.uid "" }}
{{ $name := or .metadata.name "" }}
{{ $namespace := or .metadata.namespace "" }}
{{ with PodIPsWith .spec.nodeName $hostNetwork $uid $name $namespace }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""

_POD_COMPLETE = """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""


def kwok_stages() -> list[dict[str, object]]:
    """The Stages kwok plays: kwokctl's defaults for the binary runtime (node-initialize,
    node-heartbeat-with-lease, pod-ready, pod-complete, pod-delete), but pod-complete spares
    the pods the pod runner runs (owned by a Job and labelled POD_RUNNER_LABEL): those end
    when their container does, with the status the pod runner writes.

    kwokctl uses the Stages of its config file *instead of* its defaults (all or nothing:
    pkg/kwokctl/runtime/cluster.go `Save`), so every default is restated here."""
    alive = _expr(".metadata.deletionTimestamp", "DoesNotExist")
    return [
        _stage(
            "node-initialize",
            "Node",
            [_expr(_READY, "NotIn", "True")],
            next={"statusTemplate": _NODE_INITIALIZE},
        ),
        _stage(
            "node-heartbeat-with-lease",
            "Node",
            [_expr(".status.phase", "In", "Running"), _expr(_READY, "In", "True")],
            # The node's Lease is renewed by kwok's lease controller; the status only every
            # ten minutes or so (kwokctl's values for a 10 s status update frequency).
            delay={"durationMilliseconds": 600_000, "jitterDurationMilliseconds": 610_000},
            next={"statusTemplate": _NODE_CONDITIONS},
        ),
        _stage(
            "pod-ready",
            "Pod",
            [alive, _expr(".status.phase", "In", "Pending"), _expr(_READY, "NotIn", "True")],
            next={"statusTemplate": _POD_READY},
        ),
        _stage(
            "pod-complete-unless-podrunner",
            "Pod",
            [
                alive,
                _expr(".status.phase", "In", "Running"),
                _expr(".metadata.ownerReferences.[].kind", "In", "Job"),
                _expr(f'.metadata.labels["{POD_RUNNER_LABEL}"]', "DoesNotExist"),
            ],
            next={"statusTemplate": _POD_COMPLETE},
        ),
        _stage(
            "pod-delete",
            "Pod",
            [_expr(".metadata.deletionTimestamp", "Exists")],
            next={"delete": True},
        ),
    ]


def kwokctl_config() -> list[dict[str, object]]:
    """The documents of kwokctl's config file: its options, then our Stages."""
    k8s = VERSIONS["K8S_VERSION"]
    options = {
        "kind": "KwokctlConfiguration",
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "options": {
            "runtime": "binary",
            # kwokctl's default is 0.0.0.0; our rule is loopback only.
            "bindAddress": "127.0.0.1",
            "kubeVersion": k8s,
            "kubeApiserverBinary": str(K8S_DIR / "kube-apiserver"),
            "kubeControllerManagerBinary": str(K8S_DIR / "kube-controller-manager"),
            "kubeSchedulerBinary": str(K8S_DIR / "kube-scheduler"),
            "kwokControllerBinary": str(KWOK),
            "etcdBinary": str(ETCD),
            "kubectlBinary": str(KUBECTL),
            "kubeAuthorization": True,
            "kubeAdmission": True,
            "kubeAuditPolicy": str(RUN_DIR / "audit-policy.json"),
        },
        "componentsPatches": [
            {
                "name": "kube-controller-manager",
                "extraArgs": [
                    {"key": "horizontal-pod-autoscaler-sync-period", "value": "5s"},
                    # One instance: no Lease to lose. A component that loses its Lease
                    # exits, and kwokctl does not restart it: a test that freezes the API
                    # server for a minute (test_apiserver_faults.py) would leave the test
                    # bed without a controller-manager.
                    {"key": "leader-elect", "value": "false"},
                ],
            },
            {
                "name": "kube-scheduler",
                "extraArgs": [{"key": "leader-elect", "value": "false"}],
            },
            {
                # The default /24 holds 254 Services: the scale benchmarks make three per
                # HarnessDeployment. Service IPs are never connected to (no kube-proxy).
                "name": "kube-apiserver",
                "extraArgs": [{"key": "service-cluster-ip-range", "value": "10.0.0.0/16"}],
            },
        ],
    }
    return [options, *kwok_stages()]


def _kwokctl_config_text() -> str:
    # JSON documents are YAML documents; kwokctl reads a multi-document YAML file.
    return "\n---\n".join(json.dumps(doc, indent=2) for doc in kwokctl_config()) + "\n"


def config_hash() -> str:
    """Identifies what a test bed is started with; `up` restarts one whose hash differs."""
    digest = hashlib.sha256()
    digest.update(_kwokctl_config_text().encode())
    digest.update(json.dumps(AUDIT_POLICY, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def write_kwokctl_config() -> Path:
    RUN_DIR.joinpath("audit-policy.json").write_text(json.dumps(AUDIT_POLICY, indent=2))
    path = RUN_DIR / "kwokctl.yaml"
    path.write_text(_kwokctl_config_text())
    return path


def node_manifest(index: int) -> dict[str, object]:
    name = f"kwok-node-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "topology.kubernetes.io/zone": f"zone-{index % 2}",
            },
        },
        # No NoSchedule taint: our Deployments carry no toleration.
        "spec": {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


def create_nodes() -> None:
    docs = "\n".join(json.dumps(node_manifest(i)) for i in range(NODE_COUNT))
    kubectl("apply", "-f", "-", stdin=docs)
    kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=120s")


def install_istio_crds() -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ISTIO_CRDS.resolve()))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/virtualservices.networking.istio.io",
        "crd/destinationrules.networking.istio.io",
        "crd/gateways.networking.istio.io",
        "--timeout=60s",
    )


def install_keda_crds() -> None:
    """KEDA's ScaledObject CRD (and its siblings): idempotent, so a cluster started before
    they were part of the test bed gets them too."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(KEDA_CRDS.resolve()))
    deadline = time.monotonic() + 60
    while True:
        # A CRD applied a moment ago may have no conditions yet, which `kubectl wait`
        # reports as an error rather than waiting: ask again.
        out = kubectl(
            "get",
            "crd/scaledobjects.keda.sh",
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Established')].status}",
            check=False,
        )
        if out.strip() == "True":
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the KEDA CRDs were not established within 60s")
        time.sleep(0.2)


def wait_for_default_serviceaccount(timeout: float = 90.0) -> None:
    # The ServiceAccount admission plugin rejects pods until the controller made it.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = kubectl(
            "get", "serviceaccount", "default", "-n", "default", "-o", "name", check=False
        )
        if out.strip():
            return
        time.sleep(1)
    raise RuntimeError("the default ServiceAccount never appeared (is the controller-manager up?)")


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: {interval}s
  evaluation_interval: {interval}s
scrape_configs:
  - job_name: harness
    # Static loopback targets only (no service discovery of pods or nodes).
    file_sd_configs:
      - files: ['{targets}/*.json']
        refresh_interval: 1s
"""


def start_prometheus() -> tuple[str, int]:
    targets = RUN_DIR / "prometheus-targets"
    targets.mkdir(parents=True, exist_ok=True)
    data = RUN_DIR / "prometheus-data"
    shutil.rmtree(data, ignore_errors=True)
    config = RUN_DIR / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(interval=SCRAPE_INTERVAL_SECONDS, targets=targets))
    port = free_port()
    logfile = (RUN_DIR / "prometheus.log").open("ab")
    proc = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=2h",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives `make cluster` returning
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if prometheus_healthy(url):
            return url, proc.pid
        if proc.poll() is not None:
            raise RuntimeError(
                f"prometheus exited with {proc.returncode}; see {RUN_DIR}/prometheus.log"
            )
        time.sleep(0.5)
    raise RuntimeError("prometheus did not become ready within 60s")


def up() -> State:
    state = load_state()
    if state is not None and is_up():
        if is_current(state):
            log("already running")
            return state
        # E.g. started before the pod runner ran Job pods: kwok would still fake-complete
        # them. kwok reads its Stages at start only, so the test bed restarts.
        log("running with an outdated configuration: restarting")
    ensure_built()
    down(quiet=True)  # clear a half-started previous run
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    config = write_kwokctl_config()
    kubeconfig = RUN_DIR / "kubeconfig"
    log(f"starting control plane {VERSIONS['K8S_VERSION']} (kwokctl binary runtime)")
    started = time.monotonic()
    subprocess.run(
        [
            str(KWOKCTL),
            "-c",
            str(config),
            "create",
            "cluster",
            "--name",
            CLUSTER_NAME,
            "--kubeconfig",
            str(kubeconfig),
            "--wait",
            "3m",
        ],
        env=kwok_env(),
        check=True,
        stdout=sys.stderr,
    )
    create_nodes()
    install_istio_crds()
    install_keda_crds()
    wait_for_default_serviceaccount()
    prometheus_url, prometheus_pid = start_prometheus()
    state = State(
        kubeconfig=str(kubeconfig),
        prometheus_url=prometheus_url,
        prometheus_pid=prometheus_pid,
        prometheus_targets_dir=str(RUN_DIR / "prometheus-targets"),
        audit_log=str(KWOK_WORKDIR / "clusters" / CLUSTER_NAME / "logs" / "audit.log"),
        kubectl=str(KUBECTL),
        helm=str(HELM),
        config_hash=config_hash(),
    )
    STATE_FILE.write_text(json.dumps(asdict(state), indent=2))
    log(f"ready in {time.monotonic() - started:.1f}s; prometheus at {prometheus_url}")
    return state


def _pids_under(path: Path) -> list[int]:
    """Processes whose command line mentions our run dir: what kwokctl or we started."""
    found = []
    marker = str(path)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def remove_containers() -> None:
    """Containers the pod runner started and a crashed test left behind."""
    if shutil.which("podman") is None:
        return
    sys.path.insert(0, str(HERE))
    try:
        import podrunner  # needs the venv (kubernetes); skip when run by a bare python3
    except ImportError:
        return
    podrunner.cleanup_leftovers()


def down(quiet: bool = False) -> None:
    remove_containers()
    # Collect first: an exiting process loses its command line before it is gone.
    pids = set(_pids_under(RUN_DIR)) | _extra_pids()
    state = load_state()
    if state is not None:
        pids.add(state.prometheus_pid)
        _signal(state.prometheus_pid, signal.SIGTERM)
    if KWOKCTL.exists() and (KWOK_WORKDIR / "clusters" / CLUSTER_NAME).exists():
        subprocess.run(
            [str(KWOKCTL), "delete", "cluster", "--name", CLUSTER_NAME],
            env=kwok_env(),
            check=False,
            stdout=subprocess.DEVNULL if quiet else sys.stderr,
            stderr=subprocess.DEVNULL if quiet else sys.stderr,
        )
    # Whatever is left (a crashed start, a stray component) is ended here, and we wait
    # until every process has really exited.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            _signal(pid, sig)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pids = {p for p in pids if _alive(p)}
            if not pids:
                break
            time.sleep(0.2)
        if not pids:
            break
    STATE_FILE.unlink(missing_ok=True)
    if not quiet:
        log("stopped")


EXTRA_PIDS = RUN_DIR / "extra.pids"


def adopt(pid: int) -> None:
    """Have `down` stop this process too (the demo's operator and traffic, when kept)."""
    with EXTRA_PIDS.open("a") as fh:
        fh.write(f"{pid}\n")


def _extra_pids() -> set[int]:
    try:
        pids = {int(line) for line in EXTRA_PIDS.read_text().split() if line.isdigit()}
    except OSError:
        return set()
    EXTRA_PIDS.unlink(missing_ok=True)
    return pids


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    """Running or still exiting; a zombie has exited (reaping is its parent's business)."""
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        # Field 3 of /proc/<pid>/stat, after the parenthesised command name.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "up":
        state = up()
        print(f"export KUBECONFIG={state.kubeconfig}")
    elif command == "down":
        down()
    elif command == "status":
        state = load_state()
        if state is None or not is_up():
            print("not running")
            return 1
        if not is_current(state):
            print(
                "running, but started with an outdated configuration (`make cluster` restarts it)"
            )
            return 1
        print(json.dumps(asdict(state), indent=2))
    elif command == "env":
        state = load_state()
        if state is None:
            return 1
        print(f"export KUBECONFIG={state.kubeconfig}")
        print(f"export HARNESS_PROMETHEUS_URL={state.prometheus_url}")
    elif command == "build":
        ensure_built()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

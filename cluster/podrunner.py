"""The test bed's kubelet stand-in: real containers for kwok's pods.

kwok marks pods Ready but runs nothing. For every ready pod of a HarnessDeployment whose
harness container runs an image we can run, `PodRunner` starts that container for real with
podman, from the pod spec as the apiserver holds it (so from the live Deployment's pod
template): command and args; env with Secret, ConfigMap and field references resolved from
the real objects; `envFrom`; Secret and ConfigMap volumes materialised as files and mounted
read-only; emptyDir as tmpfs; read-only root, dropped capabilities, no privilege escalation
and the user, as rendered. It follows pods as they come and go (scaling, promotion,
rollback): a pod that goes away, terminates or stops being ready has its container stopped
with SIGTERM (the harness drains), and a container that exits on its own is restarted, a
bounded number of times.

**Run-once pods.** A pod owned by a Job (an ownerReference of kind Job; the listing already
requires the `harness.dev/name` label) runs its container once, as a kubelet runs a
`restartPolicy: Never` pod (`OnFailure` is run the same way: one attempt). A writable,
empty file is mounted at the container's `terminationMessagePath` (default
`/dev/termination-log`). When the container exits, the pod's status subresource is patched
as a kubelet would: phase `Succeeded` (exit 0) or `Failed`, Ready and ContainersReady False
(`PodCompleted` / `PodFailed`), and the harness container `terminated` with its exit code,
reason (`Completed`, `Error`, `OOMKilled`), start and finish times, and `message` = the
last 4096 bytes of the termination file (with `FallbackToLogsOnError` and a non-zero exit,
an empty file gives the last 80 log lines, at most 2048 bytes). Other containers of the pod,
never run, are reported terminated with exit 0. The Job controller then counts the pod and
marks the Job Complete or Failed. kwok leaves these pods alone after it made them Running:
the test bed's Stages (localcluster.py `kwok_stages`) do not fake-complete Job pods carrying
the label, and its other pod Stages match Pending or deleted pods only.

**The one substitution.** A kubelet gives each pod its own IP; here every container shares
the host's loopback (podman `--network host`; fake pod IPs are data, never addresses). So
each pod gets a free loopback port instead, passed as `HARNESS_HOST=127.0.0.1`,
`HARNESS_PORT` and `HARNESS_METRICS_PORT` (overriding anything rendered), and
`status.podIP` field references resolve to 127.0.0.1.

Prometheus scrapes each running container (run-once ones too, until they exit) through a
file_sd target carrying the labels the documented relabelling derives from pod labels on a
real cluster (`namespace`, `harness`, `track`, `revision`, `pod`) and the
`prometheus.io/path` annotation as the metrics path.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from images import podman

log = logging.getLogger("podrunner")

APP_CONTAINER = "harness"
TESTBED_LABEL = "harness.dev/testbed"
POD_LABEL = "harness.dev/pod"
NAMESPACE_LABEL = "harness.dev/namespace"
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 4.0)
MAX_RESTARTS = 3
STOP_GRACE_CAP_SECONDS = 30
POLL_SECONDS = 0.3
FILE_REFRESH_SECONDS = 1.0
"""How often Secret and ConfigMap volume files of running containers are brought up to date
(a kubelet takes up to about a minute; faster here, so tests need not wait for it)."""
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TERMINATION_FILE = "termination-log"
"""The host file behind a run-once container's terminationMessagePath (in its files root)."""
MAX_TERMINATION_MESSAGE_BYTES = 4096
"""A kubelet keeps the last this many bytes of the file (kubecontainer's
MaxContainerTerminationMessageLength)."""
MAX_FALLBACK_LOG_BYTES = 2048
MAX_FALLBACK_LOG_LINES = 80

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]
"""(kind, name) -> the ConfigMap or Secret in the pod's namespace, or None."""


class PlanError(Exception):
    """The pod cannot be run (a missing required reference, say); like a kubelet's
    CreateContainerConfigError, it is retried on the next poll."""


@dataclass(frozen=True)
class ContainerPlan:
    """One `podman run`, derived from a pod (pure data)."""

    name: str
    image: str
    entrypoint: list[str] | None
    args: list[str]
    env: dict[str, str]
    files: dict[str, dict[str, bytes]]
    """Mount path -> file name -> content (Secret and ConfigMap volumes)."""
    tmpfs: dict[str, str]
    """Mount path -> size (emptyDir volumes)."""
    read_only: bool
    drop_all_capabilities: bool
    no_new_privileges: bool
    user: str | None
    labels: dict[str, str]
    termination_message_path: str | None = None
    """Run-once pods only: where the writable termination file is mounted."""

    def argv(self, files_root: Path) -> list[str]:
        """`podman run` arguments, with the files materialised under `files_root`."""
        argv = ["run", "-d", "--name", self.name, "--network", "host", "--pull", "never"]
        for key, value in sorted(self.labels.items()):
            argv += ["--label", f"{key}={value}"]
        if self.read_only:
            # podman would add writable tmpfs on /run, /tmp and /var/tmp; a kubelet adds
            # nothing, so only the pod's own emptyDirs are writable.
            argv += ["--read-only", "--read-only-tmpfs=false"]
        if self.drop_all_capabilities:
            argv.append("--cap-drop=ALL")
        if self.no_new_privileges:
            argv.append("--security-opt=no-new-privileges")
        if self.user is not None:
            argv += ["--user", self.user]
        for path, size in sorted(self.tmpfs.items()):
            argv += ["--tmpfs", f"{path}:rw,size={size}" if size else path]
        for index, path in enumerate(sorted(self.files)):
            argv += ["-v", f"{files_root / str(index)}:{path}:ro"]
        if self.termination_message_path is not None:
            argv += ["-v", f"{files_root / TERMINATION_FILE}:{self.termination_message_path}:rw"]
        for key, value in self.env.items():
            argv += ["-e", f"{key}={value}"]
        if self.entrypoint is not None:
            argv += ["--entrypoint", json.dumps(self.entrypoint)]
        return [*argv, self.image, *self.args]

    def write_files(self, files_root: Path) -> None:
        """Materialise the files (again: a kubelet refreshes Secret and ConfigMap volumes
        of running pods too); files whose key is gone are removed."""
        for index, path in enumerate(sorted(self.files)):
            directory = files_root / str(index)
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.iterdir():
                if stale.is_file() and stale.name not in self.files[path]:
                    stale.unlink()
            for filename, content in self.files[path].items():
                target = directory / filename
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                target.chmod(0o644)


def container_name(namespace: str, pod: str) -> str:
    """A podman name for the pod (podman allows 253 characters; keep it readable)."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", f"hrun-{namespace}-{pod}")[:200]


def is_run_once(pod: Obj) -> bool:
    """A Job's pod: its container runs to completion, once (see the module doc)."""
    refs = pod["metadata"].get("ownerReferences") or []
    return any(ref.get("kind") == "Job" for ref in refs)


def app_container(pod: Obj) -> Obj:
    container: Obj = next(c for c in pod["spec"]["containers"] if c["name"] == APP_CONTAINER)
    return container


def container_plan(pod: Obj, lookup: Lookup, image: str, port: int) -> ContainerPlan:
    """What to run for `pod` (its `harness` container) on `image`, listening on `port`."""
    meta, spec = pod["metadata"], pod["spec"]
    container = app_container(pod)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        env.update(_env_from(source, lookup))
    for var in container.get("env") or []:
        value = _env_value(var, pod, lookup)
        if value is not None:
            env[var["name"]] = value
    # The substitution for per-pod IPs (see the module doc).
    env |= {
        "HARNESS_HOST": "127.0.0.1",
        "HARNESS_PORT": str(port),
        "HARNESS_METRICS_PORT": str(port),
    }
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    files: dict[str, dict[str, bytes]] = {}
    tmpfs: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        if "emptyDir" in volume:
            tmpfs[mount["mountPath"]] = _tmpfs_size((volume["emptyDir"] or {}).get("sizeLimit"))
        elif "secret" in volume or "configMap" in volume:
            files[mount["mountPath"]] = _volume_files(volume, lookup)
    security = container.get("securityContext") or {}
    pod_security = spec.get("securityContext") or {}
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    return ContainerPlan(
        name=container_name(meta["namespace"], meta["name"]),
        image=image,
        entrypoint=container.get("command"),
        args=list(container.get("args") or []),
        env=env,
        files=files,
        tmpfs=tmpfs,
        read_only=bool(security.get("readOnlyRootFilesystem")),
        drop_all_capabilities="ALL" in ((security.get("capabilities") or {}).get("drop") or []),
        no_new_privileges=security.get("allowPrivilegeEscalation") is False,
        user=str(user) if user is not None else None,
        labels={
            TESTBED_LABEL: "podrunner",
            POD_LABEL: f"{meta['namespace']}/{meta['name']}",
            NAMESPACE_LABEL: meta["namespace"],
        },
        termination_message_path=(
            (container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH)
            if is_run_once(pod)
            else None
        ),
    )


@dataclass(frozen=True)
class Exit:
    """How a run-once container ended, as a kubelet would report it."""

    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    message: str
    container_id: str


def termination_message(data: bytes, limit: int = MAX_TERMINATION_MESSAGE_BYTES) -> str:
    """The message a kubelet reports for a termination file holding `data`: its last
    `limit` bytes."""
    return data[-limit:].decode("utf-8", errors="replace")


def terminal_status(pod: Obj, result: Exit) -> Obj:
    """The status patch (strategic merge, status subresource) a kubelet writes when the
    container of a `restartPolicy: Never` pod has exited."""
    succeeded = result.exit_code == 0
    phase, condition_reason = (
        ("Succeeded", "PodCompleted") if succeeded else ("Failed", "PodFailed")
    )
    statuses = []
    for container in pod["spec"]["containers"]:
        terminated: Obj = {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": result.started_at,
            "finishedAt": result.finished_at,
        }
        if container["name"] == APP_CONTAINER:
            terminated = {
                "exitCode": result.exit_code,
                "reason": result.reason,
                "startedAt": result.started_at,
                "finishedAt": result.finished_at,
            }
            if result.container_id:
                terminated["containerID"] = result.container_id
            if result.message:
                terminated["message"] = result.message
        statuses.append(
            {
                "name": container["name"],
                "image": container["image"],
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        )
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": condition_reason,
            "lastTransitionTime": result.finished_at,
        }
        for kind in ("Ready", "ContainersReady")
    ]
    return {"status": {"phase": phase, "conditions": conditions, "containerStatuses": statuses}}


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _data(obj: Obj) -> dict[str, bytes]:
    """A ConfigMap's or Secret's content, decoded."""
    data = obj.get("data") or {}
    if obj.get("kind") == "Secret":  # Secret data is base64; ConfigMap data is text
        out = {k: base64.b64decode(v) for k, v in data.items()}
    else:
        out = {k: str(v).encode() for k, v in data.items()}
    out |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    return out


def _key_ref(ref: Obj, kind: str, lookup: Lookup) -> str | None:
    obj = lookup(kind, ref["name"])
    value = _data(obj).get(ref["key"]) if obj is not None else None
    if value is None and not ref.get("optional"):
        raise PlanError(f"{kind} {ref['name']} key {ref['key']} is missing")
    return value.decode() if value is not None else None


_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def _field(path: str, pod: Obj) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": "127.0.0.1",  # the substitution: pods share the host's loopback
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path])
    match = _FIELD.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise PlanError(f"unsupported fieldRef {path}")


def _env_value(var: Obj, pod: Obj, lookup: Lookup) -> str | None:
    if "value" in var:
        return str(var["value"])
    source = var.get("valueFrom") or {}
    if "secretKeyRef" in source:
        return _key_ref(source["secretKeyRef"], "Secret", lookup)
    if "configMapKeyRef" in source:
        return _key_ref(source["configMapKeyRef"], "ConfigMap", lookup)
    if "fieldRef" in source:
        return _field(source["fieldRef"]["fieldPath"], pod)
    if not source:
        return ""  # a variable with neither: Kubernetes sets it empty
    raise PlanError(f"unsupported env source for {var['name']}: {sorted(source)}")


def _env_from(source: Obj, lookup: Lookup) -> dict[str, str]:
    kind, ref = (
        ("Secret", source["secretRef"])
        if "secretRef" in source
        else (
            "ConfigMap",
            source["configMapRef"],
        )
    )
    obj = lookup(kind, ref["name"])
    if obj is None:
        if ref.get("optional"):
            return {}
        raise PlanError(f"{kind} {ref['name']} is missing")
    prefix = source.get("prefix", "")
    return {prefix + k: v.decode() for k, v in _data(obj).items()}


def _volume_files(volume: Obj, lookup: Lookup) -> dict[str, bytes]:
    if "secret" in volume:
        source, kind, name = volume["secret"], "Secret", volume["secret"]["secretName"]
    else:
        source, kind, name = volume["configMap"], "ConfigMap", volume["configMap"]["name"]
    obj = lookup(kind, name)
    if obj is None:
        if source.get("optional"):
            return {}
        raise PlanError(f"{kind} {name} is missing")
    data = _data(obj)
    items = source.get("items")
    if not items:
        return data
    files = {}
    for item in items:
        if item["key"] in data:
            files[item["path"]] = data[item["key"]]
        elif not source.get("optional"):
            raise PlanError(f"{kind} {name} key {item['key']} is missing")
    return files


_QUANTITY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")


def _tmpfs_size(limit: str | None) -> str:
    """A podman tmpfs size for an emptyDir sizeLimit ("" = podman's default)."""
    match = _QUANTITY.match(str(limit or ""))
    if not match:
        return ""
    number, unit = match.groups()
    suffix = {"Ki": "k", "Mi": "m", "Gi": "g", "Ti": "t", "k": "k", "M": "m", "G": "g"}
    return f"{number}{suffix.get(unit or '', '')}"


# --- the effectful part ------------------------------------------------------------------


@dataclass(frozen=True)
class RunningPod:
    pod: str
    track: str
    revision: str
    port: int
    ready: bool
    image: str
    started_at: float


@dataclass
class _Container:
    pod: str
    uid: str
    track: str
    revision: str
    port: int
    image: str
    grace: int
    files_root: Path
    target: Path
    plan: ContainerPlan
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    restarts: int = 0
    restart_after: float | None = None
    pod_body: Obj = field(default_factory=dict)
    files_at: float = field(default_factory=time.monotonic)
    run_once: bool = False
    exit: Exit | None = None
    """A run-once container's end, kept until its pod's status is written."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_ready(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def harness_image_of(pod: Obj) -> str | None:
    for container in pod["spec"].get("containers") or []:
        if container["name"] == APP_CONTAINER:
            return str(container["image"])
    return None


class PodRunner:
    """Runs the containers of one namespace's ready harness pods; see the module doc.

    `images` maps an image reference as pod templates name it (e.g.
    `localhost/harness-app:1.0`) to the local podman image to run for it.
    """

    def __init__(
        self,
        api: Any,
        namespace: str,
        targets_dir: Path,
        images: Mapping[str, str],
        log_dir: Path,
    ) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.targets_dir = targets_dir
        self.images = dict(images)
        self.log_dir = log_dir
        self._containers: dict[str, _Container] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stoppers = ThreadPoolExecutor(4, thread_name_prefix="podrunner-stop")
        self._root = Path(tempfile.mkdtemp(prefix="podrunner-"))
        self._root.chmod(0o700)
        self._gave_up: set[str] = set()
        """Pod uids whose container exited more often than MAX_RESTARTS allows."""
        self._finished: set[str] = set()
        """Uids of run-once pods whose container ran and whose terminal status is written."""
        self.errors: list[str] = []

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> PodRunner:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="podrunner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following pods, then every container (bounded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            containers = list(self._containers.values())
            self._containers.clear()
        for future in [self._stoppers.submit(self._stop_container, c, 5) for c in containers]:
            with contextlib.suppress(Exception):
                future.result(timeout=60)
        self._stoppers.shutdown(wait=True)
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> PodRunner:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- queries -------------------------------------------------------------------------

    def pods(self) -> list[RunningPod]:
        with self._lock:
            return [
                RunningPod(c.pod, c.track, c.revision, c.port, c.ready, c.image, c.started_at)
                for c in self._containers.values()
            ]

    def wait_for(
        self, predicate: Callable[[list[RunningPod]], bool], timeout: float = 60, what: str = ""
    ) -> list[RunningPod]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.pods()
            if predicate(pods):
                return pods
            time.sleep(0.2)
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what or predicate}; pods={self.pods()};"
            f" errors={self.errors[-5:]}"
        )

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception as err:  # keep following pods through API hiccups
                self.errors.append(f"sync: {err}")
                log.warning("podrunner sync failed: %s", err)
            self._stop.wait(POLL_SECONDS)

    def _sync(self) -> None:
        listed = self.core.list_namespaced_pod(self.namespace, label_selector="harness.dev/name")
        api_client = self.core.api_client
        wanted: dict[str, Obj] = {}
        for item in listed.items:
            pod = api_client.sanitize_for_serialization(item)
            image = harness_image_of(pod)
            uid = pod["metadata"].get("uid", "")
            done = uid in self._gave_up or uid in self._finished
            if is_ready(pod) and image in self.images and not done:
                wanted[pod["metadata"]["name"]] = pod
        with self._lock:
            running = dict(self._containers)
        for name, container in running.items():
            pod = wanted.get(name)
            if pod is None or pod["metadata"].get("uid") != container.uid:
                with self._lock:
                    self._containers.pop(name, None)
                self._stoppers.submit(self._stop_container, container, container.grace)
        for name, pod in wanted.items():
            if name not in running:
                self._start(pod)
        self._refresh_files()
        self._check_health()

    def _refresh_files(self) -> None:
        """Bring mounted Secret and ConfigMap files of running containers up to date (e.g.
        the operator's kill switch), as a kubelet does for running pods."""
        now = time.monotonic()
        with self._lock:
            due = [c for c in self._containers.values() if now - c.files_at >= FILE_REFRESH_SECONDS]
        for container in due:
            container.files_at = now
            if not container.plan.files:
                continue
            try:
                plan = container_plan(
                    container.pod_body, self._lookup, container.image, container.port
                )
            except PlanError as err:
                self.errors.append(f"{container.pod}: {err}")
                continue
            plan.write_files(container.files_root)

    def _lookup(self, kind: str, name: str) -> Obj | None:
        from kubernetes.client.exceptions import ApiException

        read = (
            self.core.read_namespaced_secret
            if kind == "Secret"
            else self.core.read_namespaced_config_map
        )
        try:
            obj = read(name, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        body: Obj = self.core.api_client.sanitize_for_serialization(obj)
        body["kind"] = kind
        return body

    def _start(self, pod: Obj) -> None:
        meta = pod["metadata"]
        image = self.images[str(harness_image_of(pod))]
        port = free_port()
        try:
            plan = container_plan(pod, self._lookup, image, port)
        except PlanError as err:
            self.errors.append(f"{meta['name']}: {err}")
            return
        files_root = self._root / uuid.uuid4().hex[:8]
        plan.write_files(files_root)
        if plan.termination_message_path is not None:
            # Empty and writable by whatever user the container runs as, as a kubelet
            # creates it.
            files_root.mkdir(parents=True, exist_ok=True)
            termination = files_root / TERMINATION_FILE
            termination.write_bytes(b"")
            termination.chmod(0o666)
        labels = meta.get("labels") or {}
        container = _Container(
            pod=meta["name"],
            uid=meta.get("uid", ""),
            track=labels.get("harness.dev/track", ""),
            revision=labels.get("harness.dev/revision", ""),
            port=port,
            image=image,
            grace=min(int(pod["spec"].get("terminationGracePeriodSeconds") or 30), 30),
            files_root=files_root,
            target=self.targets_dir / f"pod-{self.namespace}-{meta['name']}.json",
            plan=plan,
            pod_body=pod,
            run_once=plan.termination_message_path is not None,
        )
        podman("rm", "-f", "-t", "0", plan.name, check=False)  # a leftover of a crash
        podman(*plan.argv(files_root))
        self._write_target(container, pod)
        with self._lock:
            self._containers[container.pod] = container

    def _write_target(self, container: _Container, pod: Obj) -> None:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        path = (meta.get("annotations") or {}).get("prometheus.io/path", "/metrics")
        entry = [
            {
                "targets": [f"127.0.0.1:{container.port}"],
                "labels": {
                    "namespace": meta["namespace"],
                    "harness": labels.get("harness.dev/name", ""),
                    "track": container.track,
                    "revision": container.revision,
                    "pod": meta["name"],
                    "__metrics_path__": path,
                },
            }
        ]
        tmp = container.target.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        tmp.rename(container.target)  # atomic: Prometheus never reads half a file

    def _check_health(self) -> None:
        with self._lock:
            containers = list(self._containers.values())
        if not containers:
            return
        states = self._states()
        for container in containers:
            state = states.get(container.plan.name)
            if state is not None and state != "running":
                container.ready = False
                if container.run_once:
                    self._complete(container)
                else:
                    self._restart(container)
                continue
            # Probed on every poll, like a readiness probe: a draining or refused harness
            # (503) leaves the mesh proxy's endpoints until it answers 200 again.
            container.ready = _answers(f"http://127.0.0.1:{container.port}/ready")

    def _states(self) -> dict[str, str]:
        out = podman(
            "ps",
            "-a",
            "--filter",
            f"label={TESTBED_LABEL}=podrunner",
            "--format",
            "json",
            check=False,
        ).stdout
        try:
            rows = json.loads(out or "[]")
        except ValueError:
            return {}
        return {str((r.get("Names") or [""])[0]): str(r.get("State", "")) for r in rows}

    def _restart(self, container: _Container) -> None:
        now = time.monotonic()
        if container.restart_after is None:  # first sight of this exit
            self._save_logs(container)
            if container.restarts >= MAX_RESTARTS:
                self.errors.append(f"{container.pod}: exited {container.restarts + 1} times")
                with self._lock:
                    self._containers.pop(container.pod, None)
                self._gave_up.add(container.uid)
                self._stoppers.submit(self._stop_container, container, 0)
                return
            backoff = RESTART_BACKOFF_SECONDS[min(container.restarts, 2)]
            container.restart_after = now + backoff
        if now < container.restart_after:
            return
        container.restart_after = None
        container.restarts += 1
        podman("rm", "-f", "-t", "0", container.plan.name, check=False)
        podman(*container.plan.argv(container.files_root), check=False)

    def _complete(self, container: _Container) -> None:
        """A run-once container exited: write its pod's terminal status (retried on the next
        poll if the API refuses), then forget the container."""
        from kubernetes.client.exceptions import ApiException

        if container.exit is None:
            container.exit = self._exit_of(container)
        try:
            self.core.patch_namespaced_pod_status(
                container.pod,
                self.namespace,
                terminal_status(container.pod_body, container.exit),
                _content_type="application/strategic-merge-patch+json",
            )
        except ApiException as err:
            if err.status != 404:  # gone: nothing to report to
                self.errors.append(f"{container.pod}: status: {err.status} {err.reason}")
                return
        self._finished.add(container.uid)
        with self._lock:
            self._containers.pop(container.pod, None)
        self._stoppers.submit(self._stop_container, container, 0)

    def _exit_of(self, container: _Container) -> Exit:
        fields = "{{.Id}} {{.State.ExitCode}} {{.State.OOMKilled}}"
        fields += " {{.State.StartedAt.Unix}} {{.State.FinishedAt.Unix}}"
        out = podman("inspect", "--format", fields, container.plan.name, check=False).stdout
        try:
            cid, code, oom, started, finished = (out or "").split()
            exit_code, started_at, finished_at = int(code), int(started), int(finished)
        except ValueError:
            self.errors.append(f"{container.pod}: cannot inspect the exited container: {out!r}")
            cid, oom, exit_code = "", "false", 128
            started_at = finished_at = int(time.time())
        reason = "Completed" if exit_code == 0 else "Error"
        if oom == "true":
            reason = "OOMKilled"
        try:
            data = (container.files_root / TERMINATION_FILE).read_bytes()
        except OSError:
            data = b""
        message = termination_message(data)
        policy = app_container(container.pod_body).get("terminationMessagePolicy", "File")
        if not message and exit_code != 0 and policy == "FallbackToLogsOnError":
            logs = podman(
                "logs", "--tail", str(MAX_FALLBACK_LOG_LINES), container.plan.name, check=False
            )
            text = ((logs.stdout or "") + (logs.stderr or "")).encode()
            message = termination_message(text, MAX_FALLBACK_LOG_BYTES)
        return Exit(
            exit_code=exit_code,
            reason=reason,
            started_at=_rfc3339(started_at),
            finished_at=_rfc3339(finished_at),
            message=message,
            container_id=f"podman://{cid}" if cid else "",
        )

    def _stop_container(self, container: _Container, grace: int) -> None:
        podman(
            "stop",
            "-t",
            str(min(grace, STOP_GRACE_CAP_SECONDS)),
            container.plan.name,
            check=False,
            timeout=STOP_GRACE_CAP_SECONDS + 15,
        )
        self._save_logs(container)
        podman("rm", "-f", "-t", "0", container.plan.name, check=False)
        container.target.unlink(missing_ok=True)
        shutil.rmtree(container.files_root, ignore_errors=True)

    def _save_logs(self, container: _Container) -> None:
        logs = podman("logs", container.plan.name, check=False)
        with (self.log_dir / f"{container.pod}.log").open("a") as fh:
            fh.write((logs.stdout or "") + (logs.stderr or ""))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def cleanup_leftovers(namespace: str | None = None) -> None:
    """Remove the containers PodRunners started (after a crash, or from `cluster down`):
    all of them, or only those of `namespace` (so that a test's teardown never touches
    another test's, or another session's, containers)."""
    filters = ["--filter", f"label={TESTBED_LABEL}=podrunner"]
    if namespace is not None:
        filters += ["--filter", f"label={NAMESPACE_LABEL}={namespace}"]
    with contextlib.suppress(FileNotFoundError, RuntimeError, OSError):
        ids = podman("ps", "-aq", *filters, check=False)
        names = (ids.stdout or "").split()
        if names:
            podman("rm", "-f", "-t", "2", *names, check=False, timeout=60)

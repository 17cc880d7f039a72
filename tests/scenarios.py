"""Given/when/then helpers so that scenario tests read like the docs."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from harness_operator.api import API_VERSION, KIND, PLURAL, VERSION
from testbed import canary_weight, eventually

GROUP = "harness.dev"


class Kubectl:
    """The real kubectl binary, on the test bed's kubeconfig."""

    def __init__(self, binary: str, kubeconfig: str) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [self.binary, "--kubeconfig", self.kubeconfig, *args],
            capture_output=True,
            text=True,
            input=stdin,
            check=False,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout + (proc.stderr if not check else "")


class Harnesses:
    """HarnessDeployments in one test namespace."""

    def __init__(self, custom: client.CustomObjectsApi, kubectl: Kubectl, namespace: str) -> None:
        self.custom = custom
        self.kubectl = kubectl
        self.namespace = namespace

    def manifest(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = self.manifest(name, spec)
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return result

    def try_create(self, name: str, spec: dict[str, Any]) -> ApiException | None:
        try:
            self.create(name, spec)
        except ApiException as err:
            return err
        return None

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return result

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        status = self.get(name).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)

    def wait_for_condition(
        self, name: str, type_: str, status: str = "True", timeout: float = 60
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            cond = self.condition(name, type_)
            return cond if cond and cond["status"] == status else None

        return eventually(probe, timeout=timeout, what=f"{name}: {type_}={status}")

    def wait_ready(self, name: str, timeout: float = 90) -> None:
        """Exactly what a user runs: `kubectl wait --for=condition=Ready hd/<name>`."""
        self.kubectl(
            "wait",
            "--for=condition=Ready",
            f"hd/{name}",
            "-n",
            self.namespace,
            f"--timeout={int(timeout)}s",
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get",
            "events",
            "-n",
            self.namespace,
            "--field-selector",
            f"involvedObject.kind={KIND},involvedObject.name={name}",
            "-o",
            "json",
        )
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    def wait_for_event(self, name: str, reason: str, timeout: float = 30) -> dict[str, Any]:
        return eventually(
            lambda: next((e for e in self.events(name) if e["reason"] == reason), None),
            timeout=timeout,
            what=f"a {reason} Event on {name}",
        )


def release_spec(
    image: str = "ghcr.io/acme/agent:1.0",
    steps: tuple[int, ...] = (20, 50, 80),
    interval: str = "3s",
    **rollout: Any,
) -> dict[str, Any]:
    """A HarnessDeployment that releases fast enough for tests, analysed on the simulator's
    harness_* series: error rate, p95 latency relative to stable, cost per request."""
    return {
        "image": image,
        "port": 8000,
        "replicas": 2,
        "rollout": {
            "steps": [{"weight": w} for w in steps],
            "interval": interval,
            "progressDeadlineSeconds": 60,
            **rollout,
        },
        "analysis": {
            "window": "10s",
            "checkInterval": "1s",
            "failureLimit": 2,
            "errorLimit": 3,
            "minRequests": 5,
            "checks": [
                {"name": "error-rate", "builtin": "errorRate", "max": 0.05},
                {"name": "latency", "builtin": "latencyP95", "relativeToStable": {"max": 2.0}},
                {"name": "cost", "builtin": "costPerRequest", "relativeToStable": {"max": 1.25}},
            ],
        },
    }


class Releases:
    """Given a HarnessDeployment with live (simulated) traffic, when something changes, then
    the release does what the docs say. Wraps Harnesses, the traffic simulator and the
    VirtualService for one HD."""

    def __init__(self, harness: Harnesses, sim: Any, custom: client.CustomObjectsApi) -> None:
        self.harness = harness
        self.sim = sim
        self.custom = custom
        self.name = sim.name
        self.weights: list[int] = []

    # given
    def deployed(self, spec: dict[str, Any]) -> Releases:
        self.harness.create(self.name, spec)
        self.harness.wait_ready(self.name, timeout=90)
        eventually(
            lambda: self.status().get("stableRevision"), timeout=60, what="a stable revision"
        )
        return self

    # when
    def new_image(self, image: str) -> None:
        self.harness.patch_spec(self.name, {"image": image})

    def canary_behaves(self, **settings: Any) -> None:
        self.sim.set_track("canary", **settings)

    # then
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.harness.get(self.name).get("status") or {}
        return status

    def canary_weight(self) -> int:
        return canary_weight(self.custom, self.harness.namespace, self.name)

    def wait_for_phase(
        self, *phases: str, timeout: float = 120, release_of: str | None = None
    ) -> dict[str, Any]:
        """Poll until the phase is one of `phases`, recording every canary weight seen on
        the VirtualService meanwhile (in `self.weights`)."""

        def probe() -> dict[str, Any] | None:
            weight = self.canary_weight()
            if not self.weights or self.weights[-1] != weight:
                self.weights.append(weight)
            status = self.status()
            if status.get("phase") not in phases:
                return None
            if release_of and status.get("canaryRevision") == release_of:
                return None
            return status

        return eventually(probe, timeout=timeout, interval=0.2, what=f"phase in {phases}")

    def wait_for_release_start(self, previous_stable: str, timeout: float = 30) -> dict[str, Any]:
        return eventually(
            lambda: (
                (s := self.status()).get("canaryRevision") not in (None, previous_stable)
                and s.get("phase") in ("Progressing", "Paused")
                and s
            ),
            timeout=timeout,
            what="the release to start",
        )


MODEL_KEY_SECRET = "model-key"


def model_key(api: Any, core: client.CoreV1Api, namespace: str, key: str) -> None:
    """The fake model API accepts `key`, and the Secret `model-key` (key `api-key`) in
    `namespace` holds it: what `spec.model.credentials.secretRef` of the tests points at."""
    api.accept_key(key)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=MODEL_KEY_SECRET), string_data={"api-key": key}
        ),
    )

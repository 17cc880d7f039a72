"""Given/when/then helpers so that scenario tests read like the docs."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from harness_operator.api import API_VERSION, KIND, PLURAL, VERSION
from testbed import eventually

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

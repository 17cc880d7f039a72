"""The Helm chart lints, renders, and its objects are accepted by the real apiserver."""

from __future__ import annotations

import subprocess
from pathlib import Path

import localcluster
from scenarios import Kubectl

CHART = Path(__file__).resolve().parents[2] / "charts" / "harness-operator"


def helm(testbed: localcluster.State, *args: str) -> str:
    proc = subprocess.run(
        [testbed.helm, *args],
        capture_output=True,
        text=True,
        check=False,
        env={"KUBECONFIG": testbed.kubeconfig, "HOME": "/tmp", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_chart_lints_strictly(testbed: localcluster.State) -> None:
    helm(testbed, "lint", "--strict", str(CHART))


def test_chart_objects_pass_server_side_validation(
    testbed: localcluster.State, kubectl: Kubectl, namespace: str
) -> None:
    rendered = helm(
        testbed,
        "template",
        "harness-operator",
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "crds.enabled=false",
        "--set",
        f"fullnameOverride=ho-{namespace}"[:63],
    )
    kinds = {
        line.split(":", 1)[1].strip() for line in rendered.splitlines() if line.startswith("kind:")
    }
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds
    # The operator's own pod must pass PodSecurity `restricted` (dry-run: admission runs).
    out = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=rendered)
    assert "deployment.apps" in out


def test_chart_installs_its_crds(testbed: localcluster.State) -> None:
    rendered = helm(
        testbed, "template", "harness-operator", str(CHART), "--show-only", "templates/crds.yaml"
    )
    assert "harnessdeployments.harness.dev" in rendered
    assert "helm.sh/resource-policy: keep" in rendered

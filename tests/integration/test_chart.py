"""The Helm chart on the local cluster, with the real helm: it lints, its objects pass the
apiserver's validation and admission, it installs, upgrades and uninstalls cleanly
(cluster-scoped objects included), and the operator running under the chart's own
ServiceAccount (a TokenRequest token, so every API call is authorised by the chart's RBAC)
releases a new revision and rolls one back without a single request denied."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import localcluster
from scenarios import Harnesses, Kubectl
from testbed import OperatorProcess, eventually

pytestmark = pytest.mark.usefixtures("crds")

CHART = Path(__file__).resolve().parents[2] / "charts" / "harness-operator"
V1, V2, V3 = "ghcr.io/acme/agent:1.0", "ghcr.io/acme/agent:1.1", "ghcr.io/acme/agent:1.2"


class Helm:
    """The real helm binary on the test bed's kubeconfig, with its own cache and config."""

    def __init__(self, testbed: localcluster.State, home: Path) -> None:
        self.binary = testbed.helm
        self.env = {"KUBECONFIG": testbed.kubeconfig, "HOME": str(home), "PATH": "/usr/bin:/bin"}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
            env=self.env,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    def __call__(self, *args: str) -> str:
        return self.run(*args).stdout


@pytest.fixture(scope="module")
def helm(testbed: localcluster.State, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(testbed, tmp_path_factory.mktemp("helm-home"))


def sets(values: dict[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def release_name(namespace: str) -> str:
    """Unique per test (it also names the cluster-scoped objects); at most 53 characters."""
    return f"ho-{uuid.uuid4().hex[:6]}-{namespace}"[:53].rstrip("-")


@pytest.fixture
def install(helm: Helm, namespace: str) -> Iterator[Any]:
    """`install(release, **values)`: `helm install --wait` into the test's namespace with the
    session's CRDs (crds.enabled=false); every release is uninstalled at the end, so no
    cluster-scoped object outlives the test."""
    installed: list[str] = []

    def run(release: str, **values: str) -> str:
        installed.append(release)  # uninstalled at the end even if the install fails midway
        return helm(
            "install",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--wait=watcher",
            "--timeout=120s",
            "--set",
            "crds.enabled=false",
            "--set",
            f"fullnameOverride={release}",
            *sets(values),
        )

    yield run
    for release in installed:
        helm.run("uninstall", release, "--namespace", namespace, "--wait", check=False)


def test_chart_lints_strictly(helm: Helm) -> None:
    helm("lint", "--strict", str(CHART))
    helm(
        "lint",
        "--strict",
        str(CHART),
        "--set",
        "watchNamespaces={a,b}",
        "--set",
        "dashboard.enabled=true",
    )


def test_a_misspelt_value_is_refused_by_the_schema(helm: Helm) -> None:
    proc = helm.run("template", "x", str(CHART), "--set", "imagee.tag=x", check=False)
    assert proc.returncode != 0
    assert "additional properties 'imagee' not allowed" in proc.stderr


@pytest.mark.parametrize(
    "values",
    [{}, {"dashboard.enabled": "true", "watchNamespaces": "{default,kube-public}"}],
    ids=["cluster", "namespaced-with-dashboard"],
)
def test_chart_objects_pass_server_side_validation(
    helm: Helm, kubectl: Kubectl, namespace: str, values: dict[str, str]
) -> None:
    rendered = helm(
        "template",
        "harness-operator",
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "crds.enabled=false",
        "--set",
        f"fullnameOverride={release_name(namespace)}",
        *sets(values),
    )
    kinds = {
        line.split(":", 1)[1].strip() for line in rendered.splitlines() if line.startswith("kind:")
    }
    assert {"Deployment", "ServiceAccount", "Service"} <= kinds
    # The operator's own pod must pass PodSecurity `restricted` (dry-run: admission runs).
    out = kubectl("apply", "--dry-run=server", "-f", "-", stdin=rendered)
    assert "deployment.apps" in out


def test_chart_installs_its_crds(helm: Helm) -> None:
    rendered = helm(
        "template", "harness-operator", str(CHART), "--show-only", "templates/crds.yaml"
    )
    crds = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "harnessanalysistemplates.harness.dev",
        "harnessdeployments.harness.dev",
    ]
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)


def operator_env(apps: client.AppsV1Api, namespace: str, name: str) -> dict[str, str]:
    deployment = apps.read_namespaced_deployment(name, namespace)
    return {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}


def exists(kubectl: Kubectl, kind: str, name: str, namespace: str | None = None) -> bool:
    where = ["-n", namespace] if namespace else []
    out = kubectl("get", kind, name, *where, "--ignore-not-found", "-o", "name")
    return bool(out.strip())


def test_install_upgrade_and_uninstall(
    helm: Helm, install: Any, kubectl: Kubectl, apps: client.AppsV1Api, namespace: str
) -> None:
    release = release_name(namespace)
    notes = install(release, **{"dashboard.enabled": "true"})
    assert "ClusterRole and ClusterRoleBinding" in notes
    assert "WARNING: prometheus.address is empty" in notes
    owned = [
        ("deployment", release, namespace),
        ("serviceaccount", release, namespace),
        ("service", f"{release}-metrics", namespace),
        ("configmap", f"{release}-dashboard", namespace),
        ("clusterrole", release, None),
        ("clusterrolebinding", release, None),
        ("clusterrole", f"{release}-view", None),
        ("clusterrole", f"{release}-edit", None),
    ]
    assert [o for o in owned if not exists(kubectl, *o)] == []
    assert operator_env(apps, namespace, release)["HARNESS_RESYNC_SECONDS"] == "30"
    generation = apps.read_namespaced_deployment(release, namespace).metadata.generation

    helm(
        "upgrade",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--reuse-values",
        "--set",
        "resyncSeconds=45",
        "--set",
        "prometheus.address=http://prometheus.monitoring:9090",
    )

    env = operator_env(apps, namespace, release)
    assert env["HARNESS_RESYNC_SECONDS"] == "45"
    assert env["HARNESS_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"
    assert apps.read_namespaced_deployment(release, namespace).metadata.generation > generation
    assert exists(kubectl, "configmap", f"{release}-dashboard", namespace), "--reuse-values kept it"

    helm("uninstall", release, "--namespace", namespace, "--wait")

    assert [o for o in owned if exists(kubectl, *o)] == []
    assert exists(kubectl, "crd", "harnessdeployments.harness.dev"), "the CRDs are not ours here"


# -- the operator under the chart's ServiceAccount ----------------------------------------


def service_account_kubeconfig(
    core: client.CoreV1Api, admin_kubeconfig: str, namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig that authenticates as `account` with a TokenRequest token (what a kubelet
    mounts into the operator's pod), for the test bed's apiserver and CA."""
    token = core.create_namespaced_service_account_token(
        account,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    cluster = yaml.safe_load(Path(admin_kubeconfig).read_text())["clusters"][0]["cluster"]
    ca = {
        k: v
        for k, v in cluster.items()
        if k in ("certificate-authority", "certificate-authority-data")
    }
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "testbed", "cluster": {"server": cluster["server"], **ca}}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": account,
                        "context": {"cluster": "testbed", "user": account, "namespace": namespace},
                    }
                ],
                "current-context": account,
            }
        )
    )
    path.chmod(0o600)
    return path


def denied(log: str) -> list[str]:
    """Log lines that report a request refused by RBAC. There must be none: given its
    namespaces, the operator does not even try kopf's cluster-wide scans."""
    return [
        line for line in log.splitlines() if re.search(r"\b403\b|forbidden", line, re.IGNORECASE)
    ]


def audit_entries(audit_log: str, namespace: str) -> list[dict[str, Any]]:
    with open(audit_log, encoding="utf-8") as fh:
        entries = [json.loads(line) for line in fh]
    return [e for e in entries if (e.get("objectRef") or {}).get("namespace") == namespace]


def test_a_release_and_a_rollback_under_the_charts_service_account(
    testbed: localcluster.State,
    install: Any,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    harness: Harnesses,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> None:
    release = release_name(namespace)
    install(release, watchNamespaces=f"{{{namespace}}}", **{"rbac.aggregateRoles": "false"})
    account = f"system:serviceaccount:{namespace}:{release}"
    kubeconfig = service_account_kubeconfig(
        core, testbed.kubeconfig, namespace, release, tmp_path / "sa.kubeconfig"
    )
    operator = OperatorProcess(
        str(kubeconfig),
        tmp_path / "operator.log",
        namespace=namespace,
        prometheus_url=testbed.prometheus_url,
    )
    # Referenced configuration: the operator reads it by name (get, no list or watch) and
    # hashes it into the revision.
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="agent-config"), data={"A": "1"}),
    )
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="agent-secret"), string_data={"B": "2"}),
    )
    try:
        harness.create(
            "agent",
            {
                "image": V1,
                "port": 8000,
                "envFrom": [
                    {"configMapRef": {"name": "agent-config"}},
                    {"secretRef": {"name": "agent-secret"}},
                ],
                "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
                "rollout": {"steps": [{"weight": 50}], "interval": "1s"},
            },
        )
        # A namespaced install grants nothing cluster-wide, and needs nothing: the operator
        # serves its namespace at once.
        harness.wait_ready("agent", timeout=60)
        first = harness.get("agent")["status"]["stableRevision"]
        assert harness.condition("agent", "ConfigResolved")["status"] == "True"

        # A release without analysis: steps move on time alone, then it is promoted.
        harness.patch_spec("agent", {"image": V2})
        promoted = eventually(
            lambda: (
                (s := harness.get("agent")["status"]).get("phase") == "Ready"
                and s.get("stableRevision") not in (None, first)
                and s
            ),
            timeout=60,
            what="the release to be promoted",
        )
        harness.wait_for_event("agent", "Promoted")
        stable = apps.read_namespaced_deployment("agent-stable", namespace)
        assert stable.spec.template.spec.containers[0].image == V2

        # Another release, held at its first step, aborted with the control annotation.
        harness.patch_spec(
            "agent", {"image": V3, "rollout": {"steps": [{"weight": 50}], "interval": "1h"}}
        )
        eventually(
            lambda: harness.get("agent")["status"].get("phase") == "Progressing",
            timeout=60,
            what="the second release to start",
        )
        eventually(
            lambda: exists(kubectl, "hpa", "agent-canary", namespace),
            timeout=30,
            what="the canary's HPA",
        )
        kubectl("annotate", "hd", "agent", "-n", namespace, "harness.dev/abort=test")
        status = eventually(
            lambda: (s := harness.get("agent")["status"]).get("phase") == "RolledBack" and s,
            timeout=60,
            what="the rollback",
        )
        assert status["rollback"]["reason"] == "Aborted"
        assert status["stableRevision"] == promoted["stableRevision"]
        eventually(
            lambda: (
                "harness.dev/abort"
                not in (harness.get("agent")["metadata"].get("annotations") or {})
            ),
            timeout=30,
            what="the abort annotation to be consumed (a patch of the HarnessDeployment)",
        )
        eventually(
            lambda: not exists(kubectl, "hpa", "agent-canary", namespace),
            timeout=30,
            what="the canary's HPA to be deleted",
        )
        harness.wait_for_event("agent", "RolledBack")

        # A HarnessDeployment with a model: the credential's Secret and the prompt's
        # ConfigMap are read by name, and the `<name>-controls` ConfigMap (the budget's kill
        # switch the harness reads) is written.
        harness.create(
            "modelled",
            {
                "image": V1,
                "port": 8000,
                "model": {
                    "provider": "anthropic",
                    "name": "claude-sonnet-4-6",
                    "credentials": {"secretRef": {"name": "agent-secret", "key": "B"}},
                    "systemPromptRef": {"name": "agent-config", "key": "A"},
                    "preflight": {"enabled": False},
                },
                "analysis": {"harnessChecks": {"enabled": False}},
            },
        )
        harness.wait_ready("modelled", timeout=60)
        assert exists(kubectl, "configmap", "modelled-controls", namespace)
    finally:
        operator.stop()
        log = operator.log_path.read_text()
        print("requests refused by the chart's RBAC:", *denied(log)[:20], sep="\n")
    assert denied(log) == [], "requests refused by the chart's RBAC"

    # The apiserver's own record: every write the operator made here was made as the
    # chart's ServiceAccount, and none was refused.
    writes = [
        e
        for e in audit_entries(testbed.audit_log, namespace)
        if str(e.get("userAgent", "")).startswith(("harness-operator/", "kopf/"))
    ]
    assert {e["user"]["username"] for e in writes} == {account}
    kinds = {
        (e["objectRef"]["resource"], e.get("objectRef", {}).get("subresource"), e["verb"])
        for e in writes
    }
    assert {
        ("deployments", None, "patch"),
        ("harnessdeployments", "status", "patch"),
        ("harnessdeployments", None, "patch"),
        ("horizontalpodautoscalers", None, "delete"),
        ("configmaps", None, "patch"),
        ("events", None, "create"),
    } <= kinds, kinds
    assert [e for e in writes if e["responseStatus"]["code"] == 403] == []

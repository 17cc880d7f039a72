"""Least privilege, as the apiserver sees it: the chart installed with the real helm, then
`kubectl auth can-i --list` as the operator's ServiceAccount compared with an exact matrix
of resources and verbs (the rules every authenticated user has are subtracted), the
Secrets it can and cannot reach, and people bound to the built-in `view` and `edit` roles
reading and changing HarnessDeployments through the aggregated roles."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

import localcluster
from scenarios import Kubectl
from testbed import eventually

pytestmark = pytest.mark.usefixtures("crds")

CHART = Path(__file__).resolve().parents[2] / "charts" / "harness-operator"

Matrix = dict[str, frozenset[str]]

NAMESPACED: Matrix = {
    "harnessdeployments.harness.dev": frozenset({"list", "watch", "patch"}),
    "harnessdeployments.harness.dev/status": frozenset({"patch"}),
    "harnessanalysistemplates.harness.dev": frozenset({"get"}),
    "deployments.apps": frozenset({"get", "list", "watch", "create", "patch"}),
    "services": frozenset({"get", "list", "watch", "create", "patch"}),
    "horizontalpodautoscalers.autoscaling": frozenset(
        {"get", "list", "watch", "create", "patch", "delete"}
    ),
    "poddisruptionbudgets.policy": frozenset({"get", "list", "watch", "create", "patch"}),
    "virtualservices.networking.istio.io": frozenset({"get", "list", "watch", "create", "patch"}),
    "destinationrules.networking.istio.io": frozenset({"get", "list", "watch", "create", "patch"}),
    "scaledobjects.keda.sh": frozenset({"get", "create", "patch", "delete"}),
    "cronjobs.batch": frozenset({"get", "list", "watch", "create", "patch"}),
    "jobs.batch": frozenset({"list", "watch", "create", "patch", "delete"}),
    "pods": frozenset({"list"}),
    "configmaps": frozenset({"get", "create", "patch"}),
    "secrets": frozenset({"get"}),
    "events": frozenset({"create"}),
}
"""What the operator may do in a namespace it watches: exactly the verbs it uses."""

CLUSTER: Matrix = NAMESPACED | {
    "customresourcedefinitions.apiextensions.k8s.io": frozenset({"list", "watch"}),
}
"""A cluster install: the same in every namespace, plus kopf's watch of CRDs."""

ROW = re.compile(
    r"^(?P<resource>\S*)\s+\[(?P<urls>[^\]]*)\]\s+\[(?P<names>[^\]]*)\]\s+\[(?P<verbs>[^\]]*)\]\s*$"
)


def can_i_rows(kubectl: Kubectl, user: str, namespace: str) -> set[tuple[str, str, str, str]]:
    out = kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace)
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["Resources", "Non-Resource"], out
    rows = set()
    for line in lines[1:]:
        match = ROW.match(line)
        assert match, f"unparsed row {line!r}"
        rows.add((match["resource"], match["urls"], match["names"], match["verbs"]))
    return rows


def matrix(kubectl: Kubectl, user: str, namespace: str, baseline: str) -> Matrix:
    """`user`'s resources and verbs in `namespace`, without what `baseline` (an account bound
    to nothing) can do too: the self-subject reviews and discovery URLs of every
    authenticated user."""
    rows = can_i_rows(kubectl, user, namespace) - can_i_rows(kubectl, baseline, namespace)
    found: dict[str, set[str]] = {}
    for resource, urls, names, verbs in rows:
        assert not urls, f"a non-resource URL rule: {urls}"
        assert not names, f"a rule limited to resource names: {resource} {names}"
        found.setdefault(resource, set()).update(verbs.split())
    return {resource: frozenset(verbs) for resource, verbs in found.items()}


def can(kubectl: Kubectl, user: str, *args: str) -> bool:
    out = kubectl("auth", "can-i", *args, f"--as={user}", check=False)
    return out.splitlines()[0].strip() == "yes"


class Helm:
    def __init__(self, testbed: localcluster.State, home: Path) -> None:
        self.binary = testbed.helm
        self.env = {"KUBECONFIG": testbed.kubeconfig, "HOME": str(home), "PATH": "/usr/bin:/bin"}

    def __call__(self, *args: str, check: bool = True) -> str:
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
        return proc.stdout


@pytest.fixture
def helm(testbed: localcluster.State, tmp_path: Path) -> Helm:
    return Helm(testbed, tmp_path / "helm-home")


@pytest.fixture
def namespaces(core: client.CoreV1Api, namespace: str) -> Iterator[Callable[[str], str]]:
    """`make("a")`: one more namespace for this test, deleted at the end."""
    made: list[str] = []

    def make(suffix: str) -> str:
        name = f"{namespace}-{suffix}"[:63]
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        made.append(name)
        return name

    yield make
    for name in made:
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def release(helm: Helm, namespace: str) -> Iterator[Callable[..., str]]:
    """`install(**values)` installs the chart into the test's namespace under a unique name
    (which also names its cluster-scoped objects) and returns that name; uninstalled at the
    end."""
    names: list[str] = []

    def install(*values: str) -> str:
        name = f"rbac-{uuid.uuid4().hex[:6]}"
        names.append(name)  # uninstalled at the end even if the install fails midway
        helm(
            "install",
            name,
            str(CHART),
            "--namespace",
            namespace,
            "--set",
            "crds.enabled=false",
            "--set",
            f"fullnameOverride={name}",
            *[arg for value in values for arg in ("--set", value)],
        )
        return name

    yield install
    for name in names:
        helm("uninstall", name, "--namespace", namespace, "--wait", check=False)


def cluster_scoped(kubectl: Kubectl, name: str) -> set[str]:
    out = kubectl(
        "get",
        "clusterroles,clusterrolebindings",
        "-l",
        f"app.kubernetes.io/instance={name}",
        "-o",
        "name",
    )
    return set(out.split())


def test_a_namespaced_install_grants_exactly_the_operators_verbs_in_watched_namespaces_only(
    release: Callable[..., str],
    namespaces: Callable[[str], str],
    helm: Helm,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    a, b = namespaces("a"), namespaces("b")
    name = release(f"watchNamespaces={{{a},{b}}}")
    operator = f"system:serviceaccount:{namespace}:{name}"
    nobody = f"system:serviceaccount:{namespace}:nobody"

    for watched in (a, b):
        eventually(
            lambda ns=watched: matrix(kubectl, operator, ns, nobody) == NAMESPACED,
            timeout=20,
            what=f"the operator's permissions in {watched}",
        )
    # Its own namespace is not watched: nothing there, and nothing cluster-wide.
    assert matrix(kubectl, operator, namespace, nobody) == {}
    assert cluster_scoped(kubectl, name) == {
        f"clusterrole.rbac.authorization.k8s.io/{name}-view",
        f"clusterrole.rbac.authorization.k8s.io/{name}-edit",
    }, "no ClusterRole or ClusterRoleBinding for the operator"

    # Secrets: get by name in a watched namespace; never list or watch, anywhere.
    assert can(kubectl, operator, "get", "secrets", "-n", a)
    for verb in ("list", "watch"):
        assert not can(kubectl, operator, verb, "secrets", "-n", a)
        assert not can(kubectl, operator, verb, "secrets", "--all-namespaces")
    assert not can(kubectl, operator, "get", "secrets", "-n", namespace)
    assert not can(kubectl, operator, "get", "secrets/anthropic", "-n", "default")

    helm("uninstall", name, "--namespace", namespace, "--wait")
    for watched in (a, b):
        assert kubectl("get", "roles,rolebindings", "-n", watched, "-o", "name").strip() == ""
    assert cluster_scoped(kubectl, name) == set()


def test_a_cluster_install_grants_the_same_verbs_everywhere_and_no_secret_listing(
    release: Callable[..., str], helm: Helm, kubectl: Kubectl, namespace: str
) -> None:
    name = release()
    operator = f"system:serviceaccount:{namespace}:{name}"
    nobody = f"system:serviceaccount:{namespace}:nobody"

    for where in (namespace, "default"):
        eventually(
            lambda ns=where: matrix(kubectl, operator, ns, nobody) == CLUSTER,
            timeout=20,
            what=f"the operator's permissions in {where}",
        )
    assert {
        f"clusterrole.rbac.authorization.k8s.io/{name}",
        f"clusterrolebinding.rbac.authorization.k8s.io/{name}",
    } <= cluster_scoped(kubectl, name)
    assert can(kubectl, operator, "get", "secrets", "-n", "default")
    for verb in ("list", "watch"):
        assert not can(kubectl, operator, verb, "secrets", "--all-namespaces")
        assert not can(kubectl, operator, verb, "configmaps", "--all-namespaces")
    assert not can(kubectl, operator, "list", "namespaces")

    helm("uninstall", name, "--namespace", namespace, "--wait")
    assert cluster_scoped(kubectl, name) == set()


HD = """
apiVersion: harness.dev/v1alpha1
kind: HarnessDeployment
metadata: {{name: {name}}}
spec: {{image: ghcr.io/acme/agent:1.0, port: 8000}}
"""


def test_users_of_the_built_in_view_and_edit_roles_can_read_and_change_harness_deployments(
    release: Callable[..., str], kubectl: Kubectl, namespace: str
) -> None:
    release("watchNamespaces={" + namespace + "}")
    viewer, editor = f"viewer-{uuid.uuid4().hex[:6]}", f"editor-{uuid.uuid4().hex[:6]}"
    kubectl(
        "create",
        "rolebinding",
        "viewers",
        "--clusterrole=view",
        f"--user={viewer}",
        "-n",
        namespace,
    )
    kubectl(
        "create",
        "rolebinding",
        "editors",
        "--clusterrole=edit",
        f"--user={editor}",
        "-n",
        namespace,
    )

    # The aggregation controller folds the chart's roles into view and edit.
    for user, verb in ((viewer, "list"), (editor, "create")):
        eventually(
            lambda u=user, v=verb: can(
                kubectl, u, v, "harnessdeployments.harness.dev", "-n", namespace
            ),
            timeout=30,
            what=f"{user} to {verb} HarnessDeployments",
        )

    kubectl("apply", f"--as={editor}", "-n", namespace, "-f", "-", stdin=HD.format(name="agent"))
    kubectl("annotate", f"--as={editor}", "-n", namespace, "hd/agent", "harness.dev/pause=true")
    shown = kubectl("get", f"--as={viewer}", "-n", namespace, "hd", "agent", "-o", "name")
    assert shown.strip() == "harnessdeployment.harness.dev/agent"
    kubectl("get", f"--as={viewer}", "-n", namespace, "harnessanalysistemplates")

    refused = kubectl(
        "annotate",
        f"--as={viewer}",
        "-n",
        namespace,
        "hd/agent",
        "harness.dev/abort=1",
        check=False,
    )
    assert "forbidden" in refused
    assert not can(kubectl, viewer, "delete", "harnessdeployments.harness.dev", "-n", namespace)
    assert not can(
        kubectl,
        editor,
        "patch",
        "harnessdeployments.harness.dev",
        "--subresource=status",
        "-n",
        namespace,
    )
    kubectl("delete", f"--as={editor}", "-n", namespace, "hd/agent")

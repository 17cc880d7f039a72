"""The Helm chart, rendered by the real helm (no cluster): strict lint, values validated
against values.schema.json, every value wired to the operator, the RBAC of a cluster and of
a namespaced install, the aggregated user roles and the optional monitoring objects."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import localcluster
from harness_operator import metrics  # noqa: F401  (registers the operator's metrics)
from harness_operator.kube import client as kube_client  # noqa: F401
from harness_operator.preflight import service as preflight_service  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "harness-operator"
HELM = localcluster.HELM
DIGEST = "sha256:" + "ab" * 32

pytestmark = pytest.mark.skipif(
    not HELM.exists(), reason=f"helm not built yet ({HELM}): run `make build`"
)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(HELM), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        # No cluster: helm must not find one (nor a user's kubeconfig).
        env={
            "HOME": os.environ.get("TMPDIR", "/tmp"),
            "PATH": "/usr/bin:/bin",
            "KUBECONFIG": "/dev/null",
        },
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def sets(values: dict[str, str]) -> list[str]:
    """`--set key=value` each; a `json:` prefix passes the value with `--set-json` (helm's
    --set reads "2.5" as a string, which the schema refuses for a number)."""
    return [
        arg
        for key, value in values.items()
        for arg in (
            ("--set-json", f"{key}={value.removeprefix('json:')}")
            if value.startswith("json:")
            else ("--set", f"{key}={value}")
        )
    ]


def render(
    release: str = "harness-operator", namespace: str = "ops", **values: str
) -> list[dict[str, Any]]:
    out = helm("template", release, str(CHART), "--namespace", namespace, *sets(values)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def only(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (operator,) = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return operator  # type: ignore[no-any-return]


def env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objects)["env"]}


def notes(**values: str) -> str:
    out = helm(
        "install", "--dry-run=client", "harness-operator", str(CHART), "-n", "ops", *sets(values)
    ).stdout
    return out.split("NOTES:", 1)[1]


# -- lint and the values schema -----------------------------------------------------------

EVERYTHING = {
    "watchNamespaces": "{agents,tools}",
    "prometheus.address": "http://prometheus-operated.monitoring:9090",
    "metrics.serviceMonitor.enabled": "true",
    "prometheusRule.enabled": "true",
    "dashboard.enabled": "true",
    "image.digest": DIGEST,
    "imagePullSecrets[0].name": "regcred",
    "extraEnv[0].name": "FOO",
    "extraEnv[0].valueFrom.secretKeyRef.name": "s",
    "extraEnv[0].valueFrom.secretKeyRef.key": "k",
}


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watchNamespaces": "{agents}"},
        EVERYTHING,
        {"rbac.create": "false", "crds.enabled": "false"},
    ],
    ids=["defaults", "namespaced", "everything", "no-rbac-no-crds"],
)
def test_lints_strictly(values: dict[str, str]) -> None:
    proc = helm("lint", "--strict", str(CHART), *sets(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("imagee.tag=x", "imagee"),
        ("image.tagg=x", "tagg"),
        ("prometheus.adress=http://p:9090", "adress"),
        ("metrics.serviceMonitor.enable=true", "enable"),
    ],
)
def test_a_misspelt_value_is_an_error_that_names_it(value: str, named: str) -> None:
    for command in (["lint", "--strict", str(CHART)], ["template", "x", str(CHART)]):
        proc = helm(*command, "--set", value, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert "additional properties" in output, output
        assert f"'{named}'" in output, output


@pytest.mark.parametrize(
    "value",
    [
        "replicaCount=6",
        "watchNamespaces={Not_A_Namespace}",
        "image.digest=latest",
        "image.pullPolicy=Sometimes",
        "resyncSeconds=0",
        "prometheus.address=prometheus:9090",
        "prometheusRule.releaseStuckFor=an hour",
        "podAnnotations.prometheus\\.io/port=9100",  # annotations are strings
    ],
)
def test_an_invalid_value_is_refused(value: str) -> None:
    proc = helm("template", "x", str(CHART), "--set", value, check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr


def test_two_replicas_need_leader_election() -> None:
    proc = helm("template", "x", str(CHART), "--set", "replicaCount=2", check=False)
    assert proc.returncode != 0
    assert "replicaCount > 1 needs leaderElection.enabled=true" in proc.stderr, proc.stderr


def test_leader_election_runs_replicas_that_share_a_lease() -> None:
    objects = render(**{"replicaCount": "2", "leaderElection.enabled": "true"})
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    variables = env(objects)
    assert variables["HARNESS_LEADER_ELECTION"] == "true"
    assert variables["HARNESS_LEADER_ELECTION_NAME"] == "harness-operator"
    assert variables["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    role = only(objects, "Role", "harness-operator-leader")
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    assert only(objects, "RoleBinding")["roleRef"]["name"] == "harness-operator-leader"


# -- the operator's Deployment ------------------------------------------------------------


def test_defaults_run_one_standalone_operator_cluster_wide() -> None:
    objects = render()
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    operator = container(objects)
    assert operator["image"] == "ghcr.io/harness-operator/harness-operator:0.1.0"
    assert operator["args"] == ["run", "--liveness=http://0.0.0.0:8080/healthz", "--log-json"]
    assert env(objects) == {
        "HARNESS_METRICS_ADDRESS": "0.0.0.0:9100",
        "HARNESS_RESYNC_SECONDS": "30",
        "HARNESS_PREFLIGHT_TTL_SECONDS": "600",
        "HARNESS_PREFLIGHT_CONCURRENCY": "4",
        "HARNESS_PREFLIGHT_TIMEOUT_SECONDS": "10",
        "HARNESS_PASS_WORKERS": "8",
        "HARNESS_QUERY_WORKERS": "16",
        "HARNESS_QUERY_PER_PROMETHEUS": "4",
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert only(objects, "ServiceAccount")["automountServiceAccountToken"] is False


def test_a_digest_pins_the_image_and_wins_over_the_tag() -> None:
    objects = render(
        **{"image.repository": "registry.example/ho", "image.tag": "9.9", "image.digest": DIGEST}
    )
    assert container(objects)["image"] == f"registry.example/ho@{DIGEST}"
    tagged = render(**{"image.repository": "registry.example/ho", "image.tag": "9.9"})
    assert container(tagged)["image"] == "registry.example/ho:9.9"


def test_every_value_reaches_the_operators_pod() -> None:
    objects = render(
        **{
            "image.pullPolicy": "Always",
            "imagePullSecrets[0].name": "regcred",
            "replicaCount": "0",
            "watchNamespaces": "{agents,tools}",
            "resyncSeconds": "json:12.5",
            "logJson": "false",
            "prometheus.address": "http://prometheus.monitoring:9090",
            "preflight.ttlSeconds": "60",
            "preflight.concurrency": "2",
            "preflight.timeoutSeconds": "3",
            "workers.passes": "4",
            "workers.queries": "32",
            "workers.queriesPerPrometheus": "2",
            "extraArgs": "{--verbose}",
            "extraEnv[0].name": "HTTPS_PROXY",
            "extraEnv[0].value": "http://proxy:3128",
            "podLabels.team": "agents",
            "podLabels.app\\.kubernetes\\.io/name": "not-the-selector",
            "podAnnotations.extra": "yes",
            "podAnnotations.prometheus\\.io/scrape": "null",
            "priorityClassName": "system-cluster-critical",
            "nodeSelector.pool": "ops",
            "tolerations[0].key": "dedicated",
            "tolerations[0].operator": "Exists",
            "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight": "1",
            "resources.limits.memory": "1Gi",
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn": "arn:aws:iam::1:role/x",
            "serviceAccount.automountServiceAccountToken": "true",
        }
    )
    deployment = only(objects, "Deployment")
    pod = deployment["spec"]["template"]
    operator = container(objects)
    assert deployment["spec"]["replicas"] == 0
    assert operator["imagePullPolicy"] == "Always"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert operator["args"] == [
        "run",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--namespace=agents",
        "--namespace=tools",
        "--verbose",
    ]
    assert env(objects) == {
        "HARNESS_METRICS_ADDRESS": "0.0.0.0:9100",
        "HARNESS_RESYNC_SECONDS": "12.5",
        "HARNESS_PROMETHEUS_URL": "http://prometheus.monitoring:9090",
        "HARNESS_PREFLIGHT_TTL_SECONDS": "60",
        "HARNESS_PREFLIGHT_CONCURRENCY": "2",
        "HARNESS_PREFLIGHT_TIMEOUT_SECONDS": "3",
        "HARNESS_PASS_WORKERS": "4",
        "HARNESS_QUERY_WORKERS": "32",
        "HARNESS_QUERY_PER_PROMETHEUS": "2",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    labels = pod["metadata"]["labels"]
    assert labels["team"] == "agents"
    assert labels["app.kubernetes.io/name"] == "harness-operator", "the selector labels win"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pod["metadata"]["annotations"] == {
        "extra": "yes",
        "prometheus.io/port": "9100",
        "prometheus.io/path": "/metrics",
    }
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["spec"]["nodeSelector"] == {"pool": "ops"}
    assert pod["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert "nodeAffinity" in pod["spec"]["affinity"]
    assert operator["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    account = only(objects, "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"
    }
    assert account["automountServiceAccountToken"] is True


def test_the_metrics_service_selects_the_operator_on_port_9100() -> None:
    objects = render()
    service = only(objects, "Service", "harness-operator-metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {"name": "metrics", "containerPort": 9100} in container(objects)["ports"]


# -- RBAC ---------------------------------------------------------------------------------

Rules = dict[tuple[str, str], set[str]]

OPERATOR_RULES: Rules = {
    ("harness.dev", "harnessdeployments"): {"list", "watch", "patch"},
    ("harness.dev", "harnessdeployments/status"): {"patch"},
    ("harness.dev", "harnessanalysistemplates"): {"get"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch"},
    ("", "services"): {"get", "list", "watch", "create", "patch"},
    ("autoscaling", "horizontalpodautoscalers"): {
        "get",
        "list",
        "watch",
        "create",
        "patch",
        "delete",
    },
    ("policy", "poddisruptionbudgets"): {"get", "list", "watch", "create", "patch"},
    ("networking.istio.io", "virtualservices"): {"get", "list", "watch", "create", "patch"},
    ("networking.istio.io", "destinationrules"): {"get", "list", "watch", "create", "patch"},
    ("keda.sh", "scaledobjects"): {"get", "create", "patch", "delete"},
    ("batch", "cronjobs"): {"get", "list", "watch", "create", "patch"},
    ("batch", "jobs"): {"list", "watch", "create", "patch", "delete"},
    ("", "pods"): {"list"},
    ("", "configmaps"): {"get", "create", "patch"},
    ("", "secrets"): {"get"},
    ("", "events"): {"create"},
}
"""Exactly what the operator uses (docs/install.md); the integration test
test_chart_rbac.py checks the same matrix against the apiserver's answer."""

CLUSTER_ONLY: Rules = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}


def flatten(rules: list[dict[str, Any]]) -> Rules:
    flat: Rules = {}
    for rule in rules:
        assert "resourceNames" not in rule
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                flat.setdefault((group, resource), set()).update(rule["verbs"])
    return flat


def operator_roles(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["kind"] in {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
        and not o["metadata"]["name"].endswith(("-view", "-edit"))
    ]


def test_a_cluster_install_has_one_cluster_role_with_exactly_the_verbs_used() -> None:
    objects = render()
    roles = operator_roles(objects)
    assert sorted(o["kind"] for o in roles) == ["ClusterRole", "ClusterRoleBinding"]
    role = only(roles, "ClusterRole")
    assert flatten(role["rules"]) == OPERATOR_RULES | CLUSTER_ONLY
    binding = only(roles, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "harness-operator",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "harness-operator", "namespace": "ops"}
    ]


def test_a_namespaced_install_has_a_role_per_watched_namespace_and_nothing_cluster_wide() -> None:
    objects = render(watchNamespaces="{agents,tools}")
    roles = operator_roles(objects)
    assert not [o for o in roles if o["kind"].startswith("Cluster")]
    for kind in ("Role", "RoleBinding"):
        assert sorted(o["metadata"]["namespace"] for o in roles if o["kind"] == kind) == [
            "agents",
            "tools",
        ]
    for role in (o for o in roles if o["kind"] == "Role"):
        assert flatten(role["rules"]) == OPERATOR_RULES
    for binding in (o for o in roles if o["kind"] == "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "harness-operator", "namespace": "ops"}
        ]


def test_secrets_and_configmaps_are_never_listed_or_watched() -> None:
    """Secrets: get by name only. ConfigMaps: get, and create/patch (the `<name>-controls`
    ConfigMap of a HarnessDeployment with a model); neither is ever listed or watched."""
    for objects in (render(), render(watchNamespaces="{agents}")):
        roles = [o for o in operator_roles(objects) if o["kind"].endswith("Role")]
        assert roles
        for role in roles:
            flat = flatten(role["rules"])
            assert flat[("", "secrets")] == {"get"}
            assert flat[("", "configmaps")] == {"get", "create", "patch"}


def test_rbac_and_the_service_account_can_be_left_to_the_platform() -> None:
    objects = render(
        **{
            "rbac.create": "false",
            "serviceAccount.create": "false",
            "serviceAccount.name": "ops-sa",
        }
    )
    assert operator_roles(objects) == []
    assert not [o for o in objects if o["kind"] == "ServiceAccount"]
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ops-sa"
    bound = render(**{"serviceAccount.create": "false", "serviceAccount.name": "ops-sa"})
    assert only(bound, "ClusterRoleBinding")["subjects"][0]["name"] == "ops-sa"


def test_extra_rules_are_added_to_the_operators_role() -> None:
    rule = {
        "rbac.extraRules[0].apiGroups[0]": "harness.dev",
        "rbac.extraRules[0].resources[0]": "harnessdeployments/finalizers",
        "rbac.extraRules[0].verbs[0]": "update",
    }
    role = only(render(watchNamespaces="{agents}", **rule), "Role")
    assert flatten(role["rules"])[("harness.dev", "harnessdeployments/finalizers")] == {"update"}


def test_users_get_aggregated_view_and_edit_roles() -> None:
    objects = render(fullnameOverride="ho")
    view = only(objects, "ClusterRole", "ho-view")
    edit = only(objects, "ClusterRole", "ho-edit")
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    assert {
        k for k, v in view["metadata"]["labels"].items() if k.startswith(aggregate) and v == "true"
    } == {
        aggregate + "view",
        aggregate + "edit",
        aggregate + "admin",
    }
    assert {
        k for k, v in edit["metadata"]["labels"].items() if k.startswith(aggregate) and v == "true"
    } == {
        aggregate + "edit",
        aggregate + "admin",
    }
    assert flatten(view["rules"]) == {
        ("harness.dev", "harnessdeployments"): {"get", "list", "watch"},
        ("harness.dev", "harnessdeployments/status"): {"get", "list", "watch"},
        ("harness.dev", "harnessanalysistemplates"): {"get", "list", "watch"},
    }
    assert flatten(edit["rules"]) == {
        ("harness.dev", "harnessdeployments"): {"create", "update", "patch", "delete"},
        ("harness.dev", "harnessanalysistemplates"): {"create", "update", "patch", "delete"},
    }
    assert not [
        o
        for o in render(**{"rbac.aggregateRoles": "false"})
        if o["metadata"]["name"].endswith(("-view", "-edit"))
    ]


# -- CRDs, monitoring, NOTES --------------------------------------------------------------


def test_crds_are_templated_and_kept_unless_told_otherwise() -> None:
    crds = [o for o in render() if o["kind"] == "CustomResourceDefinition"]
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "harnessanalysistemplates.harness.dev",
        "harnessdeployments.harness.dev",
    ]
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    unkept = [
        o for o in render(**{"crds.keep": "false"}) if o["kind"] == "CustomResourceDefinition"
    ]
    assert all(
        "helm.sh/resource-policy" not in (c["metadata"].get("annotations") or {}) for c in unkept
    )
    assert not [
        o for o in render(**{"crds.enabled": "false"}) if o["kind"] == "CustomResourceDefinition"
    ]


def test_monitoring_objects_are_opt_in() -> None:
    kinds = {o["kind"] for o in render()}
    assert not {"ServiceMonitor", "PrometheusRule", "ConfigMap"} & kinds


def test_the_service_monitor_scrapes_the_metrics_service_keeping_the_operators_labels() -> None:
    objects = render(
        **{
            "metrics.serviceMonitor.enabled": "true",
            "metrics.serviceMonitor.interval": "15s",
            "metrics.serviceMonitor.labels.release": "kube-prometheus-stack",
        }
    )
    monitor = only(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = only(objects, "Service", "harness-operator-metrics")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "honorLabels": True}
    ]


def test_the_prometheus_rule_names_the_configured_job() -> None:
    rule = only(
        render(
            **{
                "prometheusRule.enabled": "true",
                "prometheusRule.labels.release": "kube-prometheus-stack",
                "prometheusRule.job": "kubernetes-pods",
            }
        ),
        "PrometheusRule",
    )
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert all('job="kubernetes-pods"' in e for e in exprs), exprs
    default = only(render(**{"prometheusRule.enabled": "true"}), "PrometheusRule")
    down = next(
        r
        for g in default["spec"]["groups"]
        for r in g["rules"]
        if r["alert"] == "HarnessOperatorDown"
    )
    assert down["expr"] == 'absent(up{job="harness-operator-metrics"} == 1)'


def operator_metric_names() -> set[str]:
    from prometheus_client import REGISTRY

    names = set()
    for family in REGISTRY.collect():
        names |= {sample.name for sample in family.samples}
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


def series_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(harness_[a-z_]+)\b", expr))


def test_the_dashboard_is_a_grafana_dashboard_of_the_operators_metrics() -> None:
    objects = render(
        **{
            "dashboard.enabled": "true",
            "dashboard.namespace": "monitoring",
            "dashboard.annotations.grafana_folder": "Platform",
        }
    )
    config = only(objects, "ConfigMap", "harness-operator-dashboard")
    assert config["metadata"]["namespace"] == "monitoring"
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["annotations"] == {"grafana_folder": "Platform"}
    dashboard = json.loads(config["data"]["harness-operator.json"])
    assert dashboard["uid"] == "harness-operator"
    panels = {p["title"]: p for p in dashboard["panels"] if p["type"] != "row"}
    exprs = {title: " ".join(t["expr"] for t in p["targets"]) for title, p in panels.items()}
    wanted = {
        "Canary weight": "harness_canary_weight",
        "Phase": "harness_canary_phase",
        "Analysis values: canary vs stable": "harness_canary_metric_value",
        "Promotions and rollbacks": "harness_canary_rollbacks_total",
    }
    for title, metric in wanted.items():
        assert metric in exprs[title], title
    assert "harness_canary_promotions_total" in exprs["Promotions and rollbacks"]
    known = operator_metric_names()
    used = set().union(*(series_names(e) for e in exprs.values()))
    assert used - known == set()


def test_alerts_use_only_metrics_the_operator_exports() -> None:
    rule = only(render(**{"prometheusRule.enabled": "true"}), "PrometheusRule")
    used = set().union(
        *(series_names(r["expr"]) for g in rule["spec"]["groups"] for r in g["rules"])
    )
    assert {
        "harness_canary_rollbacks_total",
        "harness_canary_phase",
        "harness_operator_reconcile_duration_seconds_count",
    } <= used
    assert used - operator_metric_names() == set()


def test_notes_say_what_was_installed_and_warn_without_prometheus() -> None:
    text = notes()
    assert "ClusterRole and ClusterRoleBinding harness-operator" in text
    assert "kubectl -n ops rollout status deployment/harness-operator" in text
    assert "WARNING: prometheus.address is empty" in text
    assert "held" in text
    namespaced = notes(
        watchNamespaces="{agents}",
        **{"prometheus.address": "http://prometheus:9090", "prometheusRule.enabled": "true"},
    )
    assert "watching namespaces agents only" in namespaced
    assert "PrometheusRule harness-operator" in namespaced
    assert "WARNING" not in namespaced

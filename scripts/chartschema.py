"""`python scripts/chartschema.py [--check]`: the Helm chart's values, from one pydantic model.

The model below is the single source of the chart's values. It writes

- `charts/harness-operator/values.schema.json`, which Helm validates the merged values
  against on `install`, `upgrade`, `template` and `lint`: every object forbids unknown keys,
  so a typo such as `imagee.tag` is an error that names the key instead of a silently
  ignored value;
- `charts/harness-operator/values.yaml`, the defaults, each value preceded by its
  description as a comment (the same text as the schema's `description`).

`--check` fails (exit 1, with a diff) when either committed file differs from the model;
`make crds` writes them and `make crds-check` checks them.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from harness_operator.api.generated import write_or_check

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "harness-operator"
SCHEMA_PATH = CHART / "values.schema.json"
VALUES_PATH = CHART / "values.yaml"
COMMAND = "make crds"
WIDTH = 96

DNSLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]
Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(ms|s|m|h|d|w|y))+$")]
Quantity = str | int | float


class Strict(BaseModel):
    """Unknown keys are errors (`additionalProperties: false`); keys are camelCase."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class Image(Strict):
    """The operator's container image."""

    repository: str = Field("ghcr.io/harness-operator/harness-operator", min_length=1)
    """Repository, without tag or digest."""
    tag: str = ""
    """Tag; empty: the chart's appVersion."""
    digest: Annotated[str, StringConstraints(pattern=r"^(sha256:[a-f0-9]{64})?$")] = ""
    """Digest, `sha256:<64 hex>`. When set the image is pinned as `repository@digest` and
    `tag` is ignored."""
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """imagePullPolicy of the container."""


class LocalObjectReference(Strict):
    """A Secret in the release namespace."""

    name: Annotated[str, StringConstraints(min_length=1)]
    """Name of a Secret of type kubernetes.io/dockerconfigjson in the release namespace."""


class EnvVar(Strict):
    """A container environment variable (`value` or `valueFrom`, as in a pod spec)."""

    name: Annotated[str, StringConstraints(min_length=1)]
    """Variable name."""
    value: str | None = None
    """Literal value."""
    value_from: dict[str, Any] | None = None
    """A pod spec `valueFrom` (secretKeyRef, configMapKeyRef, fieldRef, ...)."""


class PrometheusSettings(Strict):
    """Where the operator queries metrics for release analysis."""

    address: Annotated[str, StringConstraints(pattern=r"^(https?://\S+)?$")] = ""
    """Base URL of Prometheus (or Thanos, Mimir, VictoriaMetrics), e.g.
    `http://prometheus-operated.monitoring:9090`; sets HARNESS_PROMETHEUS_URL. Empty: only
    HarnessDeployments that name `spec.analysis.prometheus.address` can be analysed; a
    release whose analysis has no address is held (Degraded, reason NoPrometheus) before any
    traffic reaches its canary. The operator sends no credentials to Prometheus: put an
    authenticating proxy in front of it if it needs them."""


class Preflight(Strict):
    """The credential and model check that runs before a model revision gets traffic
    (docs/models.md)."""

    ttl_seconds: float = Field(600, ge=1)
    """How long a verdict is reused per credential and model (HARNESS_PREFLIGHT_TTL_SECONDS)."""
    concurrency: int = Field(4, ge=1)
    """Checks in flight at once, across all HarnessDeployments
    (HARNESS_PREFLIGHT_CONCURRENCY)."""
    timeout_seconds: float = Field(10, ge=0.5)
    """Longest wait for a provider's answer (HARNESS_PREFLIGHT_TIMEOUT_SECONDS)."""


class LeaderElection(Strict):
    """Several replicas, one acting at a time, through a Lease in the release namespace."""

    enabled: bool = False
    """Compete for the Lease `<fullname>` (HARNESS_LEADER_ELECTION); the strategy becomes
    RollingUpdate, and a Role in the release namespace allows the Lease."""


class Workers(Strict):
    """Thread pools of the operator (docs/architecture.md, "Threads")."""

    passes: int = Field(8, ge=1)
    """Threads for reconcile passes and status writes (HARNESS_PASS_WORKERS)."""
    queries: int = Field(16, ge=1)
    """Threads for analysis rounds and spend readings, across all Prometheus servers
    (HARNESS_QUERY_WORKERS)."""
    queries_per_prometheus: int = Field(4, ge=1)
    """Query jobs at once against one Prometheus address: a hung one holds at most this many
    threads (HARNESS_QUERY_PER_PROMETHEUS)."""


class ServiceAccount(Strict):
    """The operator's identity: the RBAC below is bound to it."""

    create: bool = True
    """Create the ServiceAccount. false: use an existing one called `name`."""
    name: str = ""
    """Name; empty: the release's full name."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations of the ServiceAccount."""
    automount_service_account_token: bool = False
    """automountServiceAccountToken of the ServiceAccount itself, i.e. for any other pod
    that uses it. The operator's pod always mounts its token explicitly (it needs it to
    talk to the API server)."""


class Rbac(Strict):
    """Roles. The operator's verbs are exactly what it uses (docs/install.md has the table)."""

    create: bool = True
    """Create the operator's role and binding: a ClusterRole and ClusterRoleBinding when
    `watchNamespaces` is empty, else a Role and RoleBinding in each watched namespace and
    nothing cluster-scoped. false: bind the ServiceAccount yourself."""
    aggregate_roles: bool = True
    """Ship `<fullname>-view` (get, list, watch HarnessDeployments and
    HarnessAnalysisTemplates; aggregated into the built-in view, edit and admin roles) and
    `<fullname>-edit` (create, update, patch, delete them; aggregated into edit and admin),
    so users bound to the built-in roles can use HarnessDeployments."""
    extra_rules: list[dict[str, Any]] = Field(default_factory=list)
    """More policy rules for the operator's role, e.g. for the OwnerReferencesPermissionEnforcement
    admission plugin (OpenShift): `update` on `harnessdeployments/finalizers` and `delete`
    on the kinds it owns (docs/install.md)."""


class Crds(Strict):
    """The HarnessDeployment and HarnessAnalysisTemplate CRDs, templated from files/crds."""

    enabled: bool = True
    """Install and upgrade the CRDs with the release."""
    keep: bool = True
    """Annotate them `helm.sh/resource-policy: keep`: `helm uninstall` leaves the CRDs (and
    so every HarnessDeployment and the workloads it owns) in place."""


def _quantities(**values: Quantity) -> dict[str, Quantity]:
    return values


class Resources(Strict):
    """Compute resources of the operator container."""

    requests: dict[str, Quantity] = Field(
        default_factory=lambda: _quantities(cpu="100m", memory="256Mi")
    )
    """Requests."""
    limits: dict[str, Quantity] = Field(default_factory=lambda: _quantities(memory="512Mi"))
    """Limits (memory only by default: a CPU limit only throttles reconciles)."""


class ServiceMonitor(Strict):
    """A `monitoring.coreos.com/v1` ServiceMonitor for the Prometheus Operator."""

    enabled: bool = False
    """Create it (needs the Prometheus Operator's CRDs). It scrapes the metrics Service with
    honorLabels, so the operator's `namespace` label (the HarnessDeployment's) is kept. The
    scrape job is the Service's name, `<fullname>-metrics`."""
    interval: Duration = "30s"
    """Scrape interval."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels, e.g. the `release` label your Prometheus selects ServiceMonitors by."""


class Metrics(Strict):
    """The operator's own metrics (`/metrics` on port 9100, Service `<fullname>-metrics`,
    port `metrics`)."""

    service_monitor: ServiceMonitor = Field(default_factory=ServiceMonitor)


class PrometheusRule(Strict):
    """A `monitoring.coreos.com/v1` PrometheusRule with the operator's alerts: a release rolled
    back, a release stuck, a HarnessDeployment degraded, the operator down, failing or not
    reconciling, a model credential refused (docs/install.md lists them)."""

    enabled: bool = False
    """Create it (needs the Prometheus Operator's CRDs)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels, e.g. the `release` label your Prometheus selects rules by."""
    job: str = ""
    """The `job` label of the operator's scrape target; empty: `<fullname>-metrics`, which is
    what the ServiceMonitor above produces. Set it when another scrape config (e.g. the
    pods' prometheus.io annotations) scrapes the operator."""
    release_stuck_for: Duration = "1h"
    """Alert when a release has been in flight (Progressing, Paused, Promoting or
    Finalising) for longer than this. Make it longer than your slowest rollout schedule."""
    degraded_for: Duration = "15m"
    """Alert when a HarnessDeployment has been Degraded or Failed for longer than this."""


class Dashboard(Strict):
    """A Grafana dashboard (canary weight, phase, analysis values, outcomes, promotions,
    rollbacks, the operator's health) in a ConfigMap for Grafana's dashboard sidecar."""

    enabled: bool = False
    """Create the ConfigMap (label `grafana_dashboard: "1"`)."""
    namespace: str = ""
    """Namespace of the ConfigMap; empty: the release namespace."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels of the ConfigMap."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations of the ConfigMap, e.g. `grafana_folder` for the sidecar's folder option."""


class Values(Strict):
    """Values of the harness-operator chart."""

    image: Image = Field(default_factory=Image)
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list)
    """Secrets to pull the image with, e.g. `[{name: regcred}]`."""
    replica_count: int = Field(1, ge=0, le=5)
    """Operator replicas: 1, or 0 to stop it. More than one needs `leaderElection.enabled`
    (the chart refuses it otherwise): one replica acts, the others stand by and take over
    within about 12 s when it dies (at once when it stops cleanly)."""
    leader_election: LeaderElection = Field(default_factory=LeaderElection)
    watch_namespaces: list[DNSLabel] = Field(
        default_factory=list, json_schema_extra={"uniqueItems": True}
    )
    """Namespaces to watch. Empty: the whole cluster (a ClusterRole). Otherwise only these,
    each with its own Role and RoleBinding, and nothing cluster-scoped for the operator. The
    namespaces must exist."""
    resync_seconds: float = Field(30, ge=0.5)
    """Longest time between two reconciles of a HarnessDeployment when nothing wakes it
    earlier (HARNESS_RESYNC_SECONDS)."""
    log_json: bool = True
    """Log JSON lines (`--log-json`); false: kopf's plain text format."""
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    preflight: Preflight = Field(default_factory=Preflight)
    workers: Workers = Field(default_factory=Workers)
    extra_args: list[str] = Field(default_factory=list)
    """More arguments for `harness-operator run`, e.g. `[--verbose]`."""
    extra_env: list[EnvVar] = Field(default_factory=list)
    """More environment variables for the operator container."""
    service_account: ServiceAccount = Field(default_factory=ServiceAccount)
    rbac: Rbac = Field(default_factory=Rbac)
    crds: Crds = Field(default_factory=Crds)
    resources: Resources = Field(default_factory=Resources)
    pod_labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels of the operator's pod (the selector labels always win)."""
    pod_annotations: dict[str, str] = Field(
        default_factory=lambda: {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "9100",
            "prometheus.io/path": "/metrics",
        }
    )
    """Annotations of the operator's pod. The prometheus.io ones let an annotation-based
    scrape config find the metrics; set them to null when the ServiceMonitor scrapes the
    operator, or it is scraped twice."""
    priority_class_name: str = ""
    """priorityClassName of the operator's pod."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """nodeSelector of the operator's pod."""
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    """Tolerations of the operator's pod."""
    affinity: dict[str, Any] = Field(default_factory=dict)
    """Affinity of the operator's pod."""
    metrics: Metrics = Field(default_factory=Metrics)
    prometheus_rule: PrometheusRule = Field(default_factory=PrometheusRule)
    dashboard: Dashboard = Field(default_factory=Dashboard)
    fullname_override: str = Field("", alias="fullnameOverride", max_length=53)
    """Name of every object (default: the release name). Cluster-scoped objects are named
    after it too, so two releases need different names. At most 53 characters, as a release
    name, so that `<fullname>-metrics` is a valid Service name."""
    global_: dict[str, Any] = Field(default_factory=dict, alias="global")
    """Values a parent chart shares with its subcharts (unused here)."""


# -- values.schema.json ------------------------------------------------------------------


def _tidy(node: Any) -> Any:
    """Drop pydantic's per-field titles and unwrap docstring line breaks."""
    if isinstance(node, dict):
        return {
            key: " ".join(value.split()) if key == "description" else _tidy(value)
            for key, value in node.items()
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    return node


def schema() -> dict[str, Any]:
    """The JSON Schema Helm validates values against: every object closed, `$defs` kept
    (Helm resolves local references)."""
    generated = _tidy(Values.model_json_schema(by_alias=True, mode="validation"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "harness-operator chart values",
        **generated,
    }


def schema_json() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


# -- values.yaml -------------------------------------------------------------------------

VALUES_HEADER = """\
# Default values of the harness-operator chart.
# Generated by `make crds` from scripts/chartschema.py (the values model, which also writes
# values.schema.json); edit the model, not this file. docs/install.md explains the options.
"""


def _comment(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    paragraph = " ".join(text.split())
    return [
        f"{indent}# {line}"
        for line in textwrap.wrap(paragraph, WIDTH - len(indent) - 2, break_on_hyphens=False)
    ]


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    dumped: str = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return dumped.removesuffix("\n...\n").strip()


def _block(key: str, value: Any, indent: str) -> list[str]:
    if isinstance(value, (dict, list)) and value:
        lines = [f"{indent}{key}:"]
        dumped = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, width=10_000)
        lines += [f"{indent}  {line}" for line in dumped.splitlines()]
        return lines
    return [f"{indent}{key}: {_scalar(value)}"]


def _emit(model: BaseModel, indent: str) -> list[str]:
    lines: list[str] = []
    fields = type(model).model_fields
    for name, field in fields.items():
        key = field.alias or name
        value = getattr(model, name)
        if indent == "" and lines:
            lines.append("")
        if isinstance(value, BaseModel):
            lines += _comment(field.description or type(value).__doc__, indent)
            lines.append(f"{indent}{key}:")
            lines += _emit(value, indent + "  ")
        else:
            lines += _comment(field.description, indent)
            lines += _block(key, model.model_dump(by_alias=True, mode="json")[key], indent)
    return lines


def values_yaml() -> str:
    return VALUES_HEADER + "\n" + "\n".join(_emit(Values(), "")) + "\n"


# -- command -----------------------------------------------------------------------------


def run(*, check: bool) -> int:
    codes = [
        write_or_check(SCHEMA_PATH, schema_json(), check=check, command=COMMAND),
        write_or_check(VALUES_PATH, values_yaml(), check=check, command=COMMAND),
    ]
    return max(codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args()
    raise SystemExit(run(check=args.check))


if __name__ == "__main__":
    main()

"""`spec` of a HarnessDeployment: what the user asks for.

The spec describes the harness (image, ports, probes, scaling, how to release it), not raw
Kubernetes objects; `harness_operator.render` turns it into Deployments, Services, HPAs and
Istio routing. These models are the single source of the CRD schema (`schema.py`) and of
docs/api.md (`docs.py`), so every field carries a docstring and its constraints.

Cross-field rules are written twice, side by side: as CEL (`x-kubernetes-validations`,
enforced by the apiserver) and as a pydantic validator (enforced when the operator parses a
spec, and in unit tests). Keep each pair in step; their messages are identical.

Room to grow: later top-level sections (`analysis` for metric checks, `model` for the
provider/model under test, `budget` for spend guardrails) become new optional fields of
`HarnessDeploymentSpec` holding their own models, next to `rollout`. Nothing else needs to
move for them, and `revision()` ignores them unless they change the pod template.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from harness_operator.api.analysis import AnalysisSpec, HarnessChecks
from harness_operator.api.budget import BudgetSpec
from harness_operator.api.model import (
    ModelSpec,
    env_collision_rules,
    env_collisions,
)
from harness_operator.api.shape import CronSpec, Schedule, Shape, WorkerSpec
from harness_operator.api.types import (
    DURATION_PATTERN,
    ENV_NAME_PATTERN,
    IMAGE_PATTERN,
    LIST_SET,
    OPERATOR_DEFAULT,
    AnnotationValue,
    ApiModel,
    DnsLabel,
    DnsSubdomain,
    Duration,
    FreeForm,
    GatewayRef,
    Host,
    HttpPath,
    IntOrPercent,
    LabelValue,
    LongString,
    OpenApiModel,
    Port,
    Quantity,
    cel,
    list_map,
    model_rules,
    parse_duration,
    validations,
)

RESERVED_PREFIX = "harness.dev/"
"""Label and annotation keys under this prefix belong to the operator."""
RESERVED_VOLUME = "harness-tmp"
"""Name of the emptyDir volume the operator mounts at /tmp."""
MODEL_CREDENTIALS_VOLUME = "harness-model-credentials"
"""Secret volume of a file credential (`spec.model`, vertex)."""
SYSTEM_PROMPT_VOLUME = "harness-system-prompt"
"""ConfigMap volume of `spec.model.systemPromptRef`."""
CONTROLS_VOLUME = "harness-controls"
"""ConfigMap volume of the operator's controls for the harness (the budget kill switch)."""
RESERVED_VOLUMES = (
    RESERVED_VOLUME,
    MODEL_CREDENTIALS_VOLUME,
    SYSTEM_PROMPT_VOLUME,
    CONTROLS_VOLUME,
)
RESERVED_MOUNT_PREFIX = "/var/run/harness/"
"""Where the operator mounts the model's files; user mounts may not go there."""

DEFAULT_STEP_WEIGHT = 10
"""Canary weight step when `rollout` sets neither `steps` nor `stepWeight`."""
DEFAULT_MAX_WEIGHT = 50
"""Last canary weight before promotion when `rollout` sets neither `steps` nor `maxWeight`."""
MIN_INTERVAL_SECONDS = 1.0
"""Shortest `rollout.interval`."""
DEFAULT_ITERATIONS = 3
"""Analysed intervals of a blueGreen or abTest release when `rollout.iterations` is unset."""
MAX_HEADER_NAME = 128
"""Longest header name in `rollout.match`."""
_HEADER_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_HEADER_CHARS = _HEADER_FIRST | frozenset("-_.")
# `name=value` of a cookie (RFC 6265 token and cookie-octets, without quotes and backslash).
COOKIE_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+=[A-Za-z0-9!#$%&'()*+./:<=>?@^_`{|}~-]*$"

ContainerString = Annotated[str, Field(max_length=4096)]
PathString = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")]
Percent = Annotated[int, Field(ge=1, le=100)]
Seconds = Annotated[int, Field(ge=0, le=86400)]
MatchString = Annotated[str, Field(min_length=1, max_length=1024)]


def _not_reserved_mount(path: str) -> str:
    if (path + "/").startswith(RESERVED_MOUNT_PREFIX):
        raise ValueError(
            f"podTemplate.volumeMounts[].mountPath: {RESERVED_MOUNT_PREFIX} is reserved for"
            " the operator"
        )
    return path


def _duplicates(values: Iterable[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


# --- container ---------------------------------------------------------------------------


class PullPolicy(StrEnum):
    """When the kubelet pulls the image."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class KeyRef(ApiModel):
    """A key of a ConfigMap or Secret in the HarnessDeployment's namespace."""

    name: DnsSubdomain
    """Name of the ConfigMap or Secret. The operator tracks its content: a change rolls the
    pods as a new revision."""
    key: Annotated[str, Field(min_length=1, max_length=253)]
    """Key within the ConfigMap or Secret."""
    optional: bool | None = None
    """Start the pods even when the object or the key is missing."""


class EnvVarSource(OpenApiModel):
    """Where an environment variable's value comes from. `secretKeyRef` and
    `configMapKeyRef` are typed because the operator tracks the objects they name; the other
    Kubernetes sources (`fieldRef`, `resourceFieldRef`) are passed through unchanged."""

    model_config = model_rules(
        cel(
            "!(has(self.secretKeyRef) && has(self.configMapKeyRef))",
            "env[].valueFrom: set at most one of secretKeyRef and configMapKeyRef",
        )
    )

    secret_key_ref: KeyRef | None = None
    """Value of a key of a Secret."""
    config_map_key_ref: KeyRef | None = None
    """Value of a key of a ConfigMap."""

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        if self.secret_key_ref is not None and self.config_map_key_ref is not None:
            raise ValueError("env[].valueFrom: set at most one of secretKeyRef and configMapKeyRef")
        if self.secret_key_ref is None and self.config_map_key_ref is None and not self.model_extra:
            raise ValueError("env[].valueFrom: name a source (secretKeyRef, configMapKeyRef, ...)")
        return self


class EnvVar(ApiModel):
    """An environment variable of the harness container."""

    model_config = model_rules(
        cel(
            "!(has(self.value) && has(self.valueFrom))",
            "env[]: set either value or valueFrom, not both",
        )
    )

    name: Annotated[str, Field(min_length=1, max_length=256, pattern=ENV_NAME_PATTERN)]
    """Variable name."""
    value: LongString | None = None
    """Literal value."""
    value_from: Annotated[EnvVarSource | None, Field(json_schema_extra={"minProperties": 1})] = None
    """Take the value from a Secret, a ConfigMap or the pod's own fields."""

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("env[]: set either value or valueFrom, not both")
        return self


class ObjectRef(ApiModel):
    """A ConfigMap or Secret in the HarnessDeployment's namespace."""

    name: DnsSubdomain
    """Name of the object. The operator tracks its content: a change rolls the pods as a new
    revision."""
    optional: bool | None = None
    """Start the pods even when the object is missing."""


class EnvFromSource(ApiModel):
    """All keys of a ConfigMap or Secret as environment variables."""

    model_config = model_rules(
        cel(
            "has(self.configMapRef) != has(self.secretRef)",
            "envFrom[]: set exactly one of configMapRef and secretRef",
        )
    )

    config_map_ref: ObjectRef | None = None
    """Every key of this ConfigMap."""
    secret_ref: ObjectRef | None = None
    """Every key of this Secret."""
    prefix: Annotated[str, Field(max_length=253, pattern=ENV_NAME_PATTERN)] | None = None
    """Prefix added to every variable name."""

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvFromSource:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise ValueError("envFrom[]: set exactly one of configMapRef and secretRef")
        return self


ResourceList = Annotated[dict[str, Quantity], Field(max_length=16)]


class Resources(ApiModel):
    """Compute resources of the harness container. When neither requests nor limits name
    `cpu` (or `memory`), the operator requests 250m CPU (or 512Mi memory), so that CPU
    autoscaling and scheduling have something to work with."""

    requests: ResourceList | None = None
    """Minimum resources, e.g. `{cpu: 250m, memory: 512Mi}`."""
    limits: ResourceList | None = None
    """Maximum resources, e.g. `{memory: 1Gi}`."""


class Metrics(ApiModel):
    """Where the harness serves Prometheus metrics. The canary analysis reads them, so they
    must be on every pod."""

    port: Port | None = None
    """Container port of the metrics endpoint. Defaults to `spec.port`; a separate port
    keeps /metrics out of the Service and any ingress."""
    path: HttpPath = "/metrics"
    """HTTP path of the metrics endpoint."""


class HttpProbe(ApiModel):
    """An HTTP GET probe against the app port (`spec.port`)."""

    path: HttpPath = "/health"
    """HTTP path to GET; any status from 200 to 399 passes."""
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    """Seconds after container start before the first probe."""
    period_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    """Seconds between probes."""
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 2
    """Seconds before a probe times out."""
    failure_threshold: Annotated[int, Field(ge=1, le=1000)] = 3
    """Consecutive failures before the probe counts as failed."""


class LivenessProbe(HttpProbe):
    """Restarts the container when it fails. Keep it fast and local: no provider or
    database calls."""


class ReadinessProbe(HttpProbe):
    """Takes the pod out of its Service while it fails. Keep it local (config loaded,
    credentials present); a shared dependency such as the model provider here makes every
    pod unready at once and stalls releases."""

    path: HttpPath = "/ready"
    """HTTP path to GET; any status from 200 to 399 passes."""
    period_seconds: Annotated[int, Field(ge=1, le=3600)] = 5
    """Seconds between probes."""


class StartupProbe(HttpProbe):
    """Holds back the other probes until it passes once; for harnesses that start slowly."""

    period_seconds: Annotated[int, Field(ge=1, le=3600)] = 5
    """Seconds between probes."""
    failure_threshold: Annotated[int, Field(ge=1, le=1000)] = 60
    """Consecutive failures before the container is restarted (default: 5 minutes)."""


class Probes(ApiModel):
    """Health checks of the harness container."""

    liveness: LivenessProbe = Field(default_factory=LivenessProbe)
    """Liveness probe (default GET /health)."""
    readiness: ReadinessProbe = Field(default_factory=ReadinessProbe)
    """Readiness probe (default GET /ready)."""
    startup: StartupProbe | None = None
    """Startup probe; none unless set."""


# --- scaling -----------------------------------------------------------------------------


class MetricSource(OpenApiModel):
    """An extra autoscaling/v2 `MetricSpec` of type `Pods` or `External`, e.g. queue depth
    or in-flight tasks per pod. Everything but `type` is passed to the HPA unchanged."""

    model_config = model_rules(
        cel(
            "self.type == 'Pods' ? has(self.pods) : has(self.external)",
            "autoscaling.metrics[]: type Pods needs `pods`, type External needs `external`",
        )
    )

    type: Literal["Pods", "External"]
    """Metric source type."""
    pods: FreeForm | None = None
    """autoscaling/v2 `PodsMetricSource` (`metric`, `target`)."""
    external: FreeForm | None = None
    """autoscaling/v2 `ExternalMetricSource` (`metric`, `target`)."""

    @model_validator(mode="after")
    def _source_matches_type(self) -> MetricSource:
        if (self.type == "Pods" and self.pods is None) or (
            self.type == "External" and self.external is None
        ):
            raise ValueError(
                "autoscaling.metrics[]: type Pods needs `pods`, type External needs `external`"
            )
        return self


class Autoscaling(ApiModel):
    """A HorizontalPodAutoscaler per track. When no metric is set, the operator targets 80%
    CPU utilization."""

    model_config = model_rules(
        cel(
            "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
            "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
            ".minReplicas",
        )
    )

    min_replicas: Annotated[int, Field(ge=1)] = 1
    """Lower bound of the replica count."""
    max_replicas: Annotated[int, Field(ge=1)]
    """Upper bound of the replica count."""
    target_cpu_utilization_percentage: Percent | None = Field(
        default=None, alias="targetCPUUtilizationPercentage"
    )
    """Target average CPU use, in percent of the CPU request."""
    target_memory_utilization_percentage: Percent | None = None
    """Target average memory use, in percent of the memory request."""
    metrics: Annotated[list[MetricSource], Field(max_length=8)] | None = None
    """Further metrics (type Pods or External); the HPA scales on the highest proposal."""

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"
            )
        return self


class DisruptionBudget(ApiModel):
    """PodDisruptionBudget of the stable track (voluntary evictions such as node drains)."""

    max_unavailable: IntOrPercent = 1
    """Pods that may be evicted at once: a count or a percentage such as `25%`."""


# --- traffic -----------------------------------------------------------------------------


class ServiceSpec(ApiModel):
    """How clients reach the harness: Kubernetes Services plus an Istio VirtualService that
    splits traffic between the stable and the canary track."""

    port: Port = 80
    """Service port; it forwards to the container's `http` port."""
    hosts: Annotated[list[Host], Field(max_length=16, json_schema_extra=LIST_SET)] = Field(
        default_factory=list
    )
    """Extra host names routed by the VirtualService, besides the Service name."""
    gateways: Annotated[list[GatewayRef], Field(max_length=8, json_schema_extra=LIST_SET)] = Field(
        default_factory=list
    )
    """Istio Gateways (`name` or `namespace/name`) to bind the routes to. In-mesh callers
    keep routing through the implicit `mesh` gateway."""


# --- pod template ------------------------------------------------------------------------


def _reserved_keys_rule(field: str) -> dict[str, str]:
    return cel(
        f"self.all(k, !k.startsWith('{RESERVED_PREFIX}'))",
        f"podTemplate.{field}: keys under {RESERVED_PREFIX} are reserved for the operator",
    )


class Volume(OpenApiModel):
    """A pod volume (any Kubernetes volume source, passed through unchanged)."""

    name: DnsLabel
    """Volume name, referenced by `podTemplate.volumeMounts[].name`."""


class VolumeMount(OpenApiModel):
    """A mount of a `podTemplate.volumes` entry into the harness container. Other
    Kubernetes VolumeMount fields (`subPathExpr`, `mountPropagation`, ...) pass through."""

    name: DnsLabel
    """Name of the volume."""
    mount_path: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4096,
            pattern=r"^/",
            json_schema_extra=validations(
                cel(
                    f"!(self + '/').startsWith('{RESERVED_MOUNT_PREFIX}')",
                    f"podTemplate.volumeMounts[].mountPath: {RESERVED_MOUNT_PREFIX} is"
                    " reserved for the operator",
                )
            ),
        ),
        AfterValidator(_not_reserved_mount),
    ]
    """Absolute path in the container. Mounting something at /tmp replaces the operator's
    own /tmp emptyDir; /var/run/harness/ is the operator's."""
    read_only: bool | None = None
    """Mount read-only."""
    sub_path: Annotated[str, Field(max_length=4096)] | None = None
    """Path within the volume to mount instead of its root."""


class PodTemplate(ApiModel):
    """Additions to the generated pods. The operator's own settings (security context,
    selector labels, probes) win over these where they overlap."""

    model_config = model_rules(
        cel(
            "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes)"
            " && self.volumes.exists(v, v.name == m.name))",
            "podTemplate.volumeMounts[].name must name a volume in podTemplate.volumes",
            ".volumeMounts",
        )
    )

    labels: (
        Annotated[
            dict[str, LabelValue],
            Field(max_length=32, json_schema_extra=validations(_reserved_keys_rule("labels"))),
        ]
        | None
    ) = None
    """Extra pod labels."""
    annotations: (
        Annotated[
            dict[str, AnnotationValue],
            Field(max_length=64, json_schema_extra=validations(_reserved_keys_rule("annotations"))),
        ]
        | None
    ) = None
    """Extra pod annotations; they may override the `prometheus.io/*` scrape annotations."""
    node_selector: Annotated[dict[str, LabelValue], Field(max_length=32)] | None = None
    """Node labels the pods must run on."""
    tolerations: Annotated[list[FreeForm], Field(max_length=32)] | None = None
    """Kubernetes tolerations, passed through."""
    affinity: FreeForm | None = None
    """Kubernetes affinity, passed through."""
    service_account_name: DnsSubdomain | None = None
    """ServiceAccount of the pods. Setting it also mounts its token; without it the pods
    get no API token at all."""
    runtime_class_name: DnsSubdomain | None = None
    """RuntimeClass, e.g. gVisor or Kata for harnesses whose agents run code."""
    priority_class_name: DnsSubdomain | None = None
    """PriorityClass of the pods."""
    image_pull_secrets: (
        Annotated[list[DnsSubdomain], Field(max_length=8, json_schema_extra=LIST_SET)] | None
    ) = None
    """Names of Secrets holding registry credentials."""
    volumes: (
        Annotated[
            list[Volume],
            Field(
                max_length=32,
                json_schema_extra=list_map("name")
                | validations(
                    cel(
                        "self.all(v, !(v.name in"
                        f" [{', '.join(repr(v) for v in RESERVED_VOLUMES)}]))",
                        f"podTemplate.volumes[].name: {', '.join(RESERVED_VOLUMES)} are"
                        " reserved for the operator",
                    )
                ),
            ),
        ]
        | None
    ) = None
    """Extra pod volumes (any Kubernetes volume source)."""
    volume_mounts: (
        Annotated[list[VolumeMount], Field(max_length=32, json_schema_extra=list_map("mountPath"))]
        | None
    ) = None
    """Mounts of `volumes` into the harness container."""

    @model_validator(mode="after")
    def _consistent(self) -> PodTemplate:
        for field, mapping in (("labels", self.labels), ("annotations", self.annotations)):
            if mapping and any(k.startswith(RESERVED_PREFIX) for k in mapping):
                raise ValueError(
                    f"podTemplate.{field}: keys under {RESERVED_PREFIX} are reserved for the"
                    " operator"
                )
        volume_names = [v.name for v in self.volumes or []]
        if set(volume_names) & set(RESERVED_VOLUMES):
            raise ValueError(
                f"podTemplate.volumes[].name: {', '.join(RESERVED_VOLUMES)} are"
                " reserved for the operator"
            )
        if dup := _duplicates(volume_names):
            raise ValueError(f"podTemplate.volumes: duplicate names {dup}")
        mounts = self.volume_mounts or []
        if dup := _duplicates(m.mount_path for m in mounts):
            raise ValueError(f"podTemplate.volumeMounts: duplicate mountPath {dup}")
        if any(m.name not in volume_names for m in mounts):
            raise ValueError(
                "podTemplate.volumeMounts[].name must name a volume in podTemplate.volumes"
            )
        return self


# --- rollout -----------------------------------------------------------------------------


class Strategy(StrEnum):
    """How a new revision is released."""

    CANARY = "canary"
    BLUE_GREEN = "blueGreen"
    AB_TEST = "abTest"


class RolloutStep(ApiModel):
    """One canary step: route `weight` percent of traffic to the canary, then analyse."""

    weight: Percent
    """Percent of traffic routed to the canary during this step."""
    pause: Duration | None = None
    """Hold this step at least this long (e.g. `10m`) before moving on, even when the
    analysis passes sooner."""


class StringMatch(ApiModel):
    """How a request header must look: exactly one of `exact`, `prefix` and `regex`."""

    model_config = model_rules(
        cel(
            "(has(self.exact) ? 1 : 0) + (has(self.prefix) ? 1 : 0) + (has(self.regex) ? 1 : 0)"
            " == 1",
            "rollout.match[].headers: set exactly one of exact, prefix and regex",
        )
    )

    exact: MatchString | None = None
    """The whole value."""
    prefix: MatchString | None = None
    """The start of the value."""
    regex: MatchString | None = None
    """An RE2 regular expression the whole value must match."""

    @model_validator(mode="after")
    def _exactly_one(self) -> StringMatch:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError("rollout.match[].headers: set exactly one of exact, prefix and regex")
        return self


class RequestMatch(ApiModel):
    """Requests the A/B test sends to the canary: all of the given headers (and the cookie)
    must match. Becomes an Istio `HTTPMatchRequest`."""

    model_config = model_rules(
        cel(
            "has(self.headers) || has(self.cookie)",
            "rollout.match[]: set headers, cookie or both",
        ),
        cel(
            "!has(self.cookie) || !has(self.headers) || !('cookie' in self.headers)",
            "rollout.match[]: set either cookie or a `cookie` header, not both",
            ".cookie",
        ),
    )

    headers: Annotated[dict[str, StringMatch], Field(min_length=1, max_length=16)] | None = None
    """Header name (lowercase, as Istio requires; e.g. `x-canary`) to the match its value
    must satisfy."""
    cookie: Annotated[str, Field(max_length=512, pattern=COOKIE_PATTERN)] | None = None
    """A cookie the request must carry, as `name=value` (e.g. `canary=always`); shorthand for
    a regex on the `cookie` header that finds it among the others."""

    @model_validator(mode="after")
    def _consistent(self) -> RequestMatch:
        if self.headers is None and self.cookie is None:
            raise ValueError("rollout.match[]: set headers, cookie or both")
        if self.cookie is not None and self.headers is not None and "cookie" in self.headers:
            raise ValueError("rollout.match[]: set either cookie or a `cookie` header, not both")
        if any(
            len(name) > MAX_HEADER_NAME
            or not name
            or name[0] not in _HEADER_FIRST
            or any(c not in _HEADER_CHARS for c in name)
            for name in self.headers or {}
        ):
            raise ValueError(
                "rollout.match[].headers: header names must be lowercase"
                f" (letters, digits, '-', '_', '.'), at most {MAX_HEADER_NAME} characters"
            )
        return self

    def http_match(self) -> dict[str, dict[str, dict[str, str]]]:
        """The Istio `HTTPMatchRequest`, e.g. `{"headers": {"x-canary": {"exact": "1"}}}`."""
        headers = {
            name: {k: str(v) for k, v in m.model_dump(exclude_none=True).items()}
            for name, m in (self.headers or {}).items()
        }
        if self.cookie is not None:
            # Browsers join cookies with "; ", so the one we want may follow a space.
            headers["cookie"] = {"regex": f"^(.*?;\\s*)?({_re2_literal(self.cookie)})(;.*)?$"}
        return {"headers": headers}


def _re2_literal(text: str) -> str:
    """`text` as an RE2 pattern matching itself: every ASCII punctuation mark escaped (RE2
    accepts a backslash before any of them)."""
    return "".join(c if c.isalnum() else "\\" + c for c in text)


_STEPS_RISING = (
    "self.map(s, s.weight).isSorted() && self.all(s, self.exists_one(t, t.weight == s.weight))"
)


class Rollout(ApiModel):
    """How a new revision (a change of anything in the pod template, or of a referenced
    ConfigMap or Secret) is released. Weights come from `steps`, or from `stepWeight` up to
    `maxWeight`; with neither, the canary goes up by 10 to 50 percent.

    Each step (and the mirror stage, and each blue/green or A/B iteration) lasts at least
    `interval` plus its `pause`, and moves on only when the latest analysis round since it
    started passed; without `spec.analysis`, steps move on time alone. Control annotations
    on the HarnessDeployment act on a release in flight without editing the spec:
    `harness.dev/promote` (`full`: skip the remaining steps and analysis; any other value:
    skip the current step's wait), `harness.dev/abort`, `harness.dev/retry` (after a
    rollback), `harness.dev/pause` and `harness.dev/resume`."""

    model_config = model_rules(
        cel(
            "!(has(self.steps) && (has(self.stepWeight) || has(self.maxWeight)))",
            "rollout: set either steps or stepWeight/maxWeight, not both",
            ".steps",
        ),
        cel(
            "!has(self.stepWeight) || !has(self.maxWeight) || self.stepWeight <= self.maxWeight",
            "rollout.stepWeight must be less than or equal to rollout.maxWeight",
            ".stepWeight",
        ),
        cel(
            "!has(self.strategy) || self.strategy == 'canary'"
            " || !(has(self.steps) || has(self.stepWeight) || has(self.maxWeight))",
            "rollout: steps, stepWeight and maxWeight apply only to strategy canary",
            ".strategy",
        ),
        cel(
            "!has(self.mirrorPercentage) || (has(self.mirror) && self.mirror)",
            "rollout.mirrorPercentage requires rollout.mirror: true",
            ".mirrorPercentage",
        ),
        cel(
            "!has(self.mirror) || !self.mirror || !has(self.strategy) || self.strategy != 'abTest'",
            "rollout.mirror applies only to strategies canary and blueGreen",
            ".mirror",
        ),
        cel(
            "!has(self.iterations) || (has(self.strategy) && self.strategy != 'canary')",
            "rollout.iterations applies only to strategies blueGreen and abTest",
            ".iterations",
        ),
        cel(
            "has(self.strategy) && self.strategy == 'abTest' ? has(self.match) : !has(self.match)",
            "rollout.match is required by strategy abTest and applies only to it",
            ".match",
        ),
    )

    strategy: Strategy = Strategy.CANARY
    """`canary` shifts traffic step by step; `blueGreen` tests the new revision without
    traffic (through its own `<name>-canary` Service), then switches all of it; `abTest`
    routes requests that match `match` to it."""
    steps: (
        Annotated[
            list[RolloutStep],
            Field(
                min_length=1,
                max_length=20,
                json_schema_extra=validations(
                    cel(_STEPS_RISING, "rollout.steps[].weight must be strictly rising")
                ),
            ),
        ]
        | None
    ) = None
    """Explicit canary steps, e.g. weights 5, 25, 50. Weights must rise strictly; the last
    one is held until promotion."""
    step_weight: Percent | None = None
    """Canary weight added per step (alternative to `steps`; default 10)."""
    max_weight: Percent | None = None
    """Last canary weight before promotion (with `stepWeight`; default 50, or `stepWeight`
    when that is larger). Steps stop here even when `stepWeight` does not divide it."""
    interval: Annotated[
        Duration,
        Field(
            json_schema_extra=validations(
                # Guarded by the pattern so a malformed value reports only the pattern error
                # instead of a CEL evaluation error.
                cel(
                    f"!self.matches('{DURATION_PATTERN}') || duration(self) >= duration('1s')",
                    "rollout.interval must be at least 1s",
                )
            )
        ),
    ] = "1m"
    """Shortest time a step is held (e.g. `30s`, `5m`, `1h`); at least 1s. Analysis runs
    more often (`analysis.checkInterval`), so a failing canary rolls back within seconds."""
    progress_deadline_seconds: Annotated[int, Field(ge=30, le=86400)] = 600
    """Seconds a track may take to become ready before the release fails: a canary that is
    not ready in time is rolled back; a stable track that is not ready in time while
    promoting gets no traffic (all of it goes to the canary) until it is."""
    mirror: bool = False
    """Copy live requests to the canary before shifting traffic to it; the canary's
    responses are discarded. With `canary`, one `interval` of mirroring precedes the first
    step; with `blueGreen`, mirroring lasts the whole test."""
    mirror_percentage: Percent | None = None
    """Percent of requests mirrored when `mirror` is on (default 100)."""
    iterations: Annotated[int, Field(ge=1, le=1000)] | None = None
    """Intervals a `blueGreen` or `abTest` release is analysed before promotion (default
    3)."""
    match: Annotated[list[RequestMatch], Field(min_length=1, max_length=8)] | None = None
    """Requests an `abTest` sends to the canary: those matching any entry."""
    promotion_step_weight: Annotated[int, Field(ge=0, le=100)] = 0
    """After promotion, move traffic back to the stable track by this many percent per
    `interval`; 0 moves it all at once."""

    @model_validator(mode="after")
    def _consistent(self) -> Rollout:
        linear = self.step_weight is not None or self.max_weight is not None
        if self.steps is not None and linear:
            raise ValueError("rollout: set either steps or stepWeight/maxWeight, not both")
        weights = [s.weight for s in self.steps or []]
        if any(a >= b for a, b in pairwise(weights)):
            raise ValueError("rollout.steps[].weight must be strictly rising")
        if (
            self.step_weight is not None
            and self.max_weight is not None
            and self.step_weight > self.max_weight
        ):
            raise ValueError("rollout.stepWeight must be less than or equal to rollout.maxWeight")
        if self.strategy != Strategy.CANARY and (self.steps is not None or linear):
            raise ValueError(
                "rollout: steps, stepWeight and maxWeight apply only to strategy canary"
            )
        if self.mirror_percentage is not None and not self.mirror:
            raise ValueError("rollout.mirrorPercentage requires rollout.mirror: true")
        if self.mirror and self.strategy == Strategy.AB_TEST:
            raise ValueError("rollout.mirror applies only to strategies canary and blueGreen")
        if self.iterations is not None and self.strategy == Strategy.CANARY:
            raise ValueError("rollout.iterations applies only to strategies blueGreen and abTest")
        if (self.strategy == Strategy.AB_TEST) != (self.match is not None):
            raise ValueError("rollout.match is required by strategy abTest and applies only to it")
        if parse_duration(self.interval) < MIN_INTERVAL_SECONDS:
            raise ValueError("rollout.interval must be at least 1s")
        return self

    def weight_schedule(self) -> list[int]:
        """Canary weights of the release, in order; the last one precedes promotion."""
        if self.steps is not None:
            return [s.weight for s in self.steps]
        step = self.step_weight or DEFAULT_STEP_WEIGHT
        top = self.max_weight or max(DEFAULT_MAX_WEIGHT, step)
        weights = list(range(step, top + 1, step))
        return weights if weights[-1] == top else [*weights, top]

    def step_pause_seconds(self, index: int) -> float:
        """Extra hold of step `index` of `weight_schedule()` (its `pause`), in seconds."""
        if self.steps is None or not 0 <= index < len(self.steps):
            return 0.0
        pause = self.steps[index].pause
        return parse_duration(pause) if pause is not None else 0.0

    @property
    def interval_seconds(self) -> float:
        """`interval` in seconds."""
        return parse_duration(self.interval)

    @property
    def iteration_count(self) -> int:
        """`iterations`, or its default."""
        return self.iterations if self.iterations is not None else DEFAULT_ITERATIONS

    @property
    def mirror_percent(self) -> int:
        """Percent of requests mirrored while mirroring: 0 when `mirror` is off."""
        if not self.mirror:
            return 0
        return self.mirror_percentage if self.mirror_percentage is not None else 100

    def http_matches(self) -> list[dict[str, dict[str, dict[str, str]]]]:
        """`match` as Istio `HTTPMatchRequest`s (empty unless the strategy is abTest)."""
        return [m.http_match() for m in self.match or []]


# --- the spec ----------------------------------------------------------------------------


MAX_DEPTH = 64
"""Deepest nesting a spec may have: free-form fields (`affinity`, KEDA triggers, volumes)
take any shape, and rendering, hashing and comparing them must not exhaust Python's stack."""


def too_deep(data: object, limit: int) -> str | None:
    """The path of the first value nested deeper than `limit` in `data` (None when none is),
    found without recursion, so the check itself cannot overflow."""
    stack: list[tuple[object, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, path = stack.pop()
        if depth > limit:
            return path[:200] + ("..." if len(path) > 200 else "")
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{path}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(value))
    return None


_IDENTITY = "self.model.credentials.workloadIdentity"
_IS_CRON = "(has(self.shape) && self.shape == 'cron')"

# (CEL rule, message, field path) of the cron shape; `_check_cron` says the same in Python.
_CRON_CHECKS = (
    ("!has(self.schedule) || " + _IS_CRON, "spec.schedule applies only to shape cron", ".schedule"),
    ("!has(self.cron) || " + _IS_CRON, "spec.cron applies only to shape cron", ".cron"),
    (
        "!" + _IS_CRON + " || has(self.schedule)",
        "spec.schedule is required for shape cron (e.g. '0 * * * *')",
        ".schedule",
    ),
    (
        "!" + _IS_CRON + " || !has(self.autoscaling)",
        "spec.autoscaling does not apply to shape cron: each run is one pod",
        ".autoscaling",
    ),
    (
        "!" + _IS_CRON + " || !has(self.analysis)"
        " || (!has(self.analysis.checks) && !has(self.analysis.templates))",
        "spec.analysis.checks and spec.analysis.templates do not apply to shape cron: a cron"
        " harness's releases are judged by its runs (spec.cron)",
        ".analysis",
    ),
)
_CRON_RULES = (
    *(cel(rule, message, path) for rule, message, path in _CRON_CHECKS),
    cel(
        _IS_CRON + " == (has(oldSelf.shape) && oldSelf.shape == 'cron')",
        "spec.shape cannot change to or from cron (runs and replicas do not convert):"
        " create a new HarnessDeployment",
        ".shape",
    ),
)


class HarnessDeploymentSpec(ApiModel):
    """Desired state of an AI-agent harness and how new revisions of it are released."""

    model_config = model_rules(
        cel(
            "!has(self.preStopDelaySeconds) || !has(self.terminationGracePeriodSeconds)"
            " || self.preStopDelaySeconds < self.terminationGracePeriodSeconds",
            "preStopDelaySeconds must be less than terminationGracePeriodSeconds",
            ".preStopDelaySeconds",
        ),
        *env_collision_rules(),
        cel(
            "!has(self.analysis) || has(self.analysis.checks) || has(self.analysis.templates)"
            " || has(self.model)",
            "spec.analysis: set checks or templates (the harness checks apply only with"
            " spec.model)",
            ".analysis",
        ),
        cel(
            "!has(self.worker) || (has(self.shape) && self.shape == 'worker')",
            "spec.worker applies only to shape worker",
            ".worker",
        ),
        cel(
            "!has(self.shape) || self.shape == 'service' || !has(self.rollout)"
            " || ((!has(self.rollout.strategy) || self.rollout.strategy == 'canary')"
            " && (!has(self.rollout.mirror) || !self.rollout.mirror))",
            "spec.rollout: a worker or cron harness gets no traffic to split: only strategy"
            " canary, without mirror, applies",
            ".rollout",
        ),
        *_CRON_RULES,
        cel(
            "!has(self.shape) || self.shape == 'service' || !has(self.service)"
            " || ((!has(self.service.hosts) || size(self.service.hosts) == 0)"
            " && (!has(self.service.gateways) || size(self.service.gateways) == 0))",
            "spec.service.hosts and spec.service.gateways apply only to shape service",
            ".service",
        ),
        cel(
            "!has(self.worker) || !has(self.env)"
            " || !self.env.exists(e, e.name == 'HARNESS_MAX_CONCURRENCY')",
            "spec.env HARNESS_MAX_CONCURRENCY collides with spec.worker.concurrency (the"
            " operator renders it); remove it from spec.env",
            ".env",
        ),
        cel(
            "!has(self.worker) || !has(self.worker.keda) || !has(self.autoscaling)",
            "spec.worker.keda and spec.autoscaling: set at most one",
            ".worker",
        ),
        cel(
            "!has(self.worker) || !has(self.worker.maxTaskDurationSeconds)"
            " || !has(self.terminationGracePeriodSeconds)"
            " || self.terminationGracePeriodSeconds >= self.worker.maxTaskDurationSeconds",
            "spec.terminationGracePeriodSeconds must be at least"
            " spec.worker.maxTaskDurationSeconds, so stopping a pod never kills a task",
            ".terminationGracePeriodSeconds",
        ),
        cel(
            f"!has(self.model) || !has(self.model.credentials) || !has({_IDENTITY})"
            " || !has(self.podTemplate) || !has(self.podTemplate.serviceAccountName)"
            f" || self.podTemplate.serviceAccountName == {_IDENTITY}.serviceAccountName",
            "spec.podTemplate.serviceAccountName must equal"
            " spec.model.credentials.workloadIdentity.serviceAccountName when both are set",
            ".podTemplate",
        ),
    )

    image: Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_PATTERN)]
    """Container image of the harness, e.g. `ghcr.io/acme/pr-reviewer:1.4.0`."""
    image_pull_policy: PullPolicy | None = None
    """Image pull policy; Kubernetes' default when unset."""
    command: Annotated[list[ContainerString], Field(max_length=64)] | None = None
    """Entrypoint override (the image's ENTRYPOINT when unset)."""
    args: Annotated[list[ContainerString], Field(max_length=64)] | None = None
    """Arguments (the image's CMD when unset)."""
    env: (
        Annotated[list[EnvVar], Field(max_length=128, json_schema_extra=list_map("name"))] | None
    ) = None
    """Environment variables of the harness container."""
    env_from: Annotated[list[EnvFromSource], Field(max_length=32)] | None = None
    """ConfigMaps and Secrets whose keys all become environment variables."""
    resources: Resources = Field(default_factory=Resources)
    """CPU and memory requests and limits of the harness container."""
    port: Port = 8080
    """Container port the harness serves HTTP on; probes and Services use it."""
    metrics: Metrics = Field(default_factory=Metrics)
    """Prometheus metrics endpoint."""
    probes: Probes = Field(default_factory=Probes)
    """Liveness, readiness and startup probes."""
    replicas: Annotated[int, Field(ge=0)] = 1
    """Replicas of the stable track. Ignored when `autoscaling` is set."""
    autoscaling: Autoscaling | None = None
    """Horizontal autoscaling; replaces `replicas` when set."""
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    """Service port, host names and gateways."""
    termination_grace_period_seconds: Annotated[int, Field(ge=1, le=86400)] = 60
    """Seconds a pod has to finish in-flight tasks after it is asked to stop. Set it above
    the longest task a harness runs."""
    pre_stop_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 5
    """Seconds a stopping pod keeps serving before it gets SIGTERM, so that endpoints and
    routes drop it first. 0 disables the delay."""
    disruption_budget: DisruptionBudget = Field(default_factory=DisruptionBudget)
    """Limit on voluntary evictions of stable pods."""
    pod_template: PodTemplate = Field(default_factory=PodTemplate)
    """Extra labels, annotations, scheduling, volumes and identity of the pods."""
    rollout: Rollout = Field(default_factory=Rollout)
    """How new revisions are released."""
    analysis: AnalysisSpec | None = None
    """Metric checks that gate releases (built-in and custom queries: docs/metrics.md)."""
    model: ModelSpec | None = None
    """The model the harness calls: provider, pinned model id, credentials, system prompt
    (docs/models.md). The operator renders the provider's environment into the pods and
    verifies the credential before a revision gets traffic."""
    shape: Annotated[Shape, Field(json_schema_extra=OPERATOR_DEFAULT)] = Shape.SERVICE
    """How the harness takes work: `service` (an HTTP API; releases split requests),
    `worker` (pulls from a queue; releases give the canary a share of the replicas) or
    `cron` (runs on `schedule`; releases judge the new revision's runs); see
    docs/shapes.md. Changing to or from `cron` needs a new HarnessDeployment."""
    worker: WorkerSpec | None = None
    """Settings of a queue worker (`shape: worker`)."""
    schedule: Schedule | None = None
    """When a cron harness runs (`shape: cron`, required there): five cron fields, e.g.
    `*/15 * * * *`, or a macro such as `@hourly`."""
    cron: CronSpec | None = None
    """Settings of a scheduled harness (`shape: cron`): run history, timeout, and how the
    runs of a new revision are judged."""
    budget: BudgetSpec | None = None
    """Spend limits per window and the escalation ladder: warn, block promotion, abort the
    canary, stop spending (docs/budgets.md). Never starts a release."""

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, data: object) -> object:
        if (where := too_deep(data, MAX_DEPTH)) is not None:
            raise ValueError(
                f"spec{where}: nested more than {MAX_DEPTH} levels deep (no Kubernetes object"
                " is); flatten it"
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> HarnessDeploymentSpec:
        if self.pre_stop_delay_seconds >= self.termination_grace_period_seconds:
            raise ValueError("preStopDelaySeconds must be less than terminationGracePeriodSeconds")
        if dup := _duplicates(e.name for e in self.env or []):
            raise ValueError(f"env: duplicate names {dup}")
        self._check_shape()
        analysis = self.analysis
        if analysis is not None and not (analysis.checks or analysis.templates or self.model):
            raise ValueError(
                "spec.analysis: set checks or templates (the harness checks apply only with"
                " spec.model)"
            )
        if self.model is not None:
            if clash := env_collisions(self.model.provider, [e.name for e in self.env or []]):
                raise ValueError("; ".join(clash))
            identity = self.model.service_account_name
            account = self.pod_template.service_account_name
            if identity is not None and account is not None and account != identity:
                raise ValueError(
                    "spec.podTemplate.serviceAccountName must equal"
                    " spec.model.credentials.workloadIdentity.serviceAccountName when both"
                    " are set"
                )
        return self

    def _check_cron(self) -> None:
        cron = self.shape is Shape.CRON
        broken = (
            (self.schedule is not None and not cron, 0),
            (self.cron is not None and not cron, 1),
            (cron and self.schedule is None, 2),
            (cron and self.autoscaling is not None, 3),
            (
                cron
                and self.analysis is not None
                and bool(self.analysis.checks or self.analysis.templates),
                4,
            ),
        )
        for failed, index in broken:
            if failed:
                raise ValueError(_CRON_CHECKS[index][1])

    @property
    def cron_settings(self) -> CronSpec:
        """`spec.cron`, or its defaults."""
        return self.cron or CronSpec()

    def _check_shape(self) -> None:
        self._check_cron()
        if self.worker is not None and self.shape is not Shape.WORKER:
            raise ValueError("spec.worker applies only to shape worker")
        if self.shape is not Shape.SERVICE:
            if self.rollout.strategy is not Strategy.CANARY or self.rollout.mirror:
                raise ValueError(
                    "spec.rollout: a worker or cron harness gets no traffic to split: only"
                    " strategy canary, without mirror, applies"
                )
            if self.service.hosts or self.service.gateways:
                raise ValueError(
                    "spec.service.hosts and spec.service.gateways apply only to shape service"
                )
        worker = self.worker
        if worker is not None and any(e.name == "HARNESS_MAX_CONCURRENCY" for e in self.env or []):
            raise ValueError(
                "spec.env HARNESS_MAX_CONCURRENCY collides with spec.worker.concurrency (the"
                " operator renders it); remove it from spec.env"
            )
        if worker is not None and worker.keda is not None and self.autoscaling is not None:
            raise ValueError("spec.worker.keda and spec.autoscaling: set at most one")
        if (
            worker is not None
            and worker.max_task_duration_seconds is not None
            and self.termination_grace_period_seconds < worker.max_task_duration_seconds
        ):
            raise ValueError(
                "spec.terminationGracePeriodSeconds must be at least"
                " spec.worker.maxTaskDurationSeconds, so stopping a pod never kills a task"
            )

    @property
    def routed(self) -> bool:
        """Whether the harness gets traffic through Services and routing."""
        return self.shape is Shape.SERVICE

    @property
    def analysis_settings(self) -> AnalysisSpec | None:
        """The analysis that gates releases: `analysis` as written; for a harness (`model`
        set) without one, the default harness checks alone. None when there is nothing to
        check: steps move on time alone."""
        analysis = self.analysis
        if analysis is None:
            return AnalysisSpec(harness_checks=HarnessChecks()) if self.model else None
        harness = self.model is not None and (
            analysis.harness_checks is None or analysis.harness_checks.enabled
        )
        return analysis if analysis.checks or analysis.templates or harness else None

    @property
    def harness_checks_apply(self) -> bool:
        """Whether the default harness checks are part of the analysis."""
        analysis = self.analysis_settings
        if self.model is None or analysis is None:
            return False
        return analysis.harness_checks is None or analysis.harness_checks.enabled

    @property
    def metrics_port(self) -> int:
        """Port of the metrics endpoint (`metrics.port`, else `port`)."""
        return self.metrics.port if self.metrics.port is not None else self.port

"""`spec.analysis` of a HarnessDeployment and `spec` of a HarnessAnalysisTemplate: which
metric checks gate a release, and how their outcomes turn into a rollback.

Only the declaration lives here. `harness_operator.analysis` renders the queries, asks
Prometheus and turns answers into Pass/Fail/Inconclusive/Error; docs/metrics.md documents
the built-in queries and their label contract.

As in `spec.py`, every cross-field rule is written twice: as CEL (enforced by the
apiserver) and as a pydantic validator (enforced when the operator parses an object), with
the same message except that the pydantic one names the check (`checks[error-rate]: ...`
where CEL can only say `checks[]: ...`). Messages say `checks[]` rather than
`analysis.checks[]` because the same `Check` model is also `spec.checks[]` of a
HarnessAnalysisTemplate.
"""

from __future__ import annotations

import re
from collections import Counter
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, model_validator

from harness_operator.api.types import (
    DURATION_PATTERN,
    LIST_SET,
    OPERATOR_DEFAULT,
    ApiModel,
    DnsLabel,
    DnsSubdomain,
    Duration,
    cel,
    list_map,
    model_rules,
    parse_duration,
    validations,
)

PRICE_PLACEHOLDERS: Final = ("price_input", "price_output", "price_cache_read", "price_cache_write")
"""USD per token of each kind, from `spec.model.pricing` (NaN without one)."""
PLACEHOLDERS: Final = (
    "name",
    "namespace",
    "track",
    "revision",
    "window",
    "workload",
    *PRICE_PLACEHOLDERS,
)
"""What a query may contain as `{{placeholder}}` (exact spelling, no spaces)."""
PLACEHOLDER_PATTERN: Final = re.compile(r"\{\{([^{}]*)\}\}")
"""A `{{...}}` token of a query template."""

MAX_CHECKS: Final = 32
"""Checks per `analysis.checks` or template (templates may add more in total)."""
MAX_TEMPLATES: Final = 16
MIN_CHECK_INTERVAL_SECONDS: Final = 1.0
MIN_WINDOW_SECONDS: Final = 1.0

Ratio = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Threshold = Annotated[float, Field(allow_inf_nan=False)]
SampleCount = Annotated[int, Field(ge=0, le=1_000_000_000)]


def unknown_placeholders(query: str) -> list[str]:
    """`{{...}}` tokens in `query` that are not placeholders, plus a stray `{{` that opens
    none (e.g. `{{name}`); empty when the query is fine."""
    unknown = [
        f"{{{{{m.group(1)}}}}}"
        for m in PLACEHOLDER_PATTERN.finditer(query)
        if m.group(1) not in PLACEHOLDERS
    ]
    rest = PLACEHOLDER_PATTERN.sub("", query)
    if "{{" in rest:
        unknown.append(rest[rest.index("{{") :][:24])
    return unknown


def _placeholder_rule(field: str) -> dict[str, str]:
    stripped = "self" + "".join(f".replace('{{{{{p}}}}}', '')" for p in PLACEHOLDERS)
    allowed = ", ".join(f"{{{{{p}}}}}" for p in PLACEHOLDERS)
    return cel(
        f"!{stripped}.contains('{{{{')",
        f"{field}: unknown placeholder; use only {allowed}",
    )


CheckQuery = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        json_schema_extra=validations(_placeholder_rule("checks[].query")),
    ),
]
GuardQuery = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        json_schema_extra=validations(_placeholder_rule("checks[].minSamples.query")),
    ),
]


def _min_duration_rule(field: str, minimum: str) -> dict[str, str]:
    # Guarded by the pattern so a malformed value reports only the pattern error.
    return cel(
        f"!self.matches('{DURATION_PATTERN}') || duration(self) >= duration('{minimum}')",
        f"{field} must be at least {minimum}",
    )


CheckWindow = Annotated[
    Duration, Field(json_schema_extra=validations(_min_duration_rule("checks[].window", "1s")))
]
AnalysisWindow = Annotated[
    Duration, Field(json_schema_extra=validations(_min_duration_rule("analysis.window", "1s")))
]
TemplateWindow = Annotated[
    Duration, Field(json_schema_extra=validations(_min_duration_rule("spec.window", "1s")))
]
CheckInterval = Annotated[
    Duration,
    Field(json_schema_extra=validations(_min_duration_rule("analysis.checkInterval", "1s"))),
]


# --- enums -------------------------------------------------------------------------------


class Builtin(StrEnum):
    """A query the operator ships (docs/metrics.md lists each one verbatim)."""

    ERROR_RATE = "errorRate"
    LATENCY_P95 = "latencyP95"
    COST_PER_HOUR = "costPerHour"
    COST_PER_REQUEST = "costPerRequest"
    ISTIO_ERROR_RATE = "istioErrorRate"
    ISTIO_LATENCY_P95 = "istioLatencyP95"
    # Per finished task, from the harness metric set (docs/metrics.md §3).
    COST_PER_TASK = "costPerTask"
    OUTPUT_TOKENS_PER_TASK = "outputTokensPerTask"
    TASK_ERROR_RATE = "taskErrorRate"
    UPSTREAM_ERROR_SHARE = "upstreamErrorShare"
    TOOL_FAILURE_RATE = "toolFailureRate"
    TASK_LATENCY_P95 = "taskLatencyP95"
    TIME_TO_FIRST_TOKEN_P95 = "timeToFirstTokenP95"

    @property
    def per_task(self) -> bool:
        """Whether its evidence is finished tasks (guarded by `analysis.minTasks`)."""
        return self in TASK_BUILTINS


TASK_BUILTINS: Final = frozenset(
    {
        Builtin.COST_PER_TASK,
        Builtin.OUTPUT_TOKENS_PER_TASK,
        Builtin.TASK_ERROR_RATE,
        Builtin.UPSTREAM_ERROR_SHARE,
        Builtin.TOOL_FAILURE_RATE,
        Builtin.TASK_LATENCY_P95,
        Builtin.TIME_TO_FIRST_TOKEN_P95,
    }
)


class PassWhen(StrEnum):
    """How a check with several bounds combines them."""

    ALL = "all"
    """Every bound must hold (a breach of any one fails the check)."""
    ANY = "any"
    """One bound holding is enough: the check fails only when the canary breaks all of
    them, e.g. above 5 % *and* more than 2 points above stable."""


class OnNoData(StrEnum):
    """What a check concludes when its query returns no series, NaN or an infinity."""

    INCONCLUSIVE = "inconclusive"
    FAIL = "fail"
    PASS = "pass"


# --- checks ------------------------------------------------------------------------------


SecretKeyName = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class PrometheusSecretKey(ApiModel):
    """A key of a Secret in the HarnessDeployment's namespace. Only the operator reads it,
    in memory, at every analysis round (so a rotated value is used at once); it is not part
    of the revision and never reaches the pods."""

    name: DnsSubdomain
    """Name of the Secret."""
    key: SecretKeyName
    """Key within the Secret."""


class PrometheusBasicAuth(ApiModel):
    """HTTP basic authentication from two keys of one Secret."""

    name: DnsSubdomain
    """Name of the Secret."""
    username_key: SecretKeyName = "username"
    """Key holding the user name (it may not contain `:`)."""
    password_key: SecretKeyName = "password"
    """Key holding the password."""


class PrometheusAuth(ApiModel):
    """Credentials the operator sends to Prometheus with every query: exactly one of a
    bearer token and basic auth, read from a Secret. Surrounding whitespace of the values (a
    trailing newline) is ignored, as Prometheus does for its own credential files."""

    model_config = model_rules(
        cel(
            "has(self.bearerTokenSecretRef) != has(self.basicAuthSecretRef)",
            "analysis.prometheus.auth: set exactly one of bearerTokenSecretRef and"
            " basicAuthSecretRef",
        )
    )

    bearer_token_secret_ref: PrometheusSecretKey | None = None
    """The Secret key holding a bearer token (`Authorization: Bearer <token>`)."""
    basic_auth_secret_ref: PrometheusBasicAuth | None = None
    """The Secret holding a user name and a password (`Authorization: Basic ...`)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> PrometheusAuth:
        if (self.bearer_token_secret_ref is None) == (self.basic_auth_secret_ref is None):
            raise ValueError(
                "analysis.prometheus.auth: set exactly one of bearerTokenSecretRef and"
                " basicAuthSecretRef"
            )
        return self


class PrometheusSpec(ApiModel):
    """The Prometheus (or Prometheus-compatible: Thanos, Mimir, VictoriaMetrics) server the
    checks query with instant queries (`GET <address>/api/v1/query`), and how to
    authenticate to it."""

    model_config = model_rules(
        cel(
            "!has(self.caSecretRef) || !has(self.insecureSkipVerify) || !self.insecureSkipVerify",
            "analysis.prometheus: set at most one of caSecretRef and insecureSkipVerify",
            ".insecureSkipVerify",
        ),
        cel(
            "!has(self.caSecretRef) || !has(self.address) || self.address.startsWith('https://')",
            "analysis.prometheus.caSecretRef needs an https:// address",
            ".caSecretRef",
        ),
    )

    address: (
        Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s]+$")] | None
    ) = Field(default=None, repr=False)
    """Base URL, e.g. `http://prometheus.monitoring:9090` (a path prefix such as
    `/prometheus` is kept). Defaults to the operator's `HARNESS_PROMETHEUS_URL`. Credentials
    in it (`https://user:password@host`) are used for basic auth when `auth` is not set, and
    are never shown in messages; prefer `auth`, since everyone who can read this object can
    read its address."""
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    """Seconds before a query counts as failed (an Error outcome, never a pass)."""
    auth: PrometheusAuth | None = None
    """Credentials for a secured Prometheus (a bearer token or basic auth, from a Secret).
    They replace credentials in `address`."""
    ca_secret_ref: PrometheusSecretKey | None = None
    """The Secret key holding the PEM CA bundle that signs the server's certificate (only
    this bundle is trusted then). Default: the operator's system trust store."""
    insecure_skip_verify: Annotated[bool, Field(json_schema_extra=OPERATOR_DEFAULT)] = False
    """Do not verify the server's TLS certificate (tests only: anyone on the path can read
    the credentials then)."""

    @model_validator(mode="after")
    def _tls(self) -> PrometheusSpec:
        if self.ca_secret_ref is not None and self.insecure_skip_verify:
            raise ValueError(
                "analysis.prometheus: set at most one of caSecretRef and insecureSkipVerify"
            )
        if (
            self.ca_secret_ref is not None
            and self.address is not None
            and not self.address.startswith("https://")
        ):
            raise ValueError("analysis.prometheus.caSecretRef needs an https:// address")
        return self


class RelativeBounds(ApiModel):
    """Bounds on canary ÷ stable, both measured by the same query over the same window."""

    model_config = model_rules(
        cel(
            "has(self.min) || has(self.max) || has(self.maxIncrease)",
            "checks[].relativeToStable: set min, max or maxIncrease",
        ),
        cel(
            "!has(self.min) || !has(self.max) || self.min <= self.max",
            "checks[].relativeToStable.min must be less than or equal to"
            " checks[].relativeToStable.max",
            ".min",
        ),
    )

    min: Ratio | None = None
    """Lowest allowed canary ÷ stable, e.g. `0.9` for a success rate."""
    max: Ratio | None = None
    """Highest allowed canary ÷ stable, e.g. `1.25`: at most 25% worse than stable."""
    max_increase: Threshold | None = None
    """Highest allowed canary - stable, in the check's unit, e.g. `0.02`: an error rate at
    most 2 points above stable's."""

    @model_validator(mode="after")
    def _bounds(self) -> RelativeBounds:
        if self.min is None and self.max is None and self.max_increase is None:
            raise ValueError("checks[].relativeToStable: set min, max or maxIncrease")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(
                "checks[].relativeToStable.min must be less than or equal to"
                " checks[].relativeToStable.max"
            )
        return self


class SampleGuard(ApiModel):
    """Minimum evidence before a check counts: while the guard query's value is below `min`
    (in either track the check reads), the check is Inconclusive instead of passing or
    failing on a handful of samples."""

    query: GuardQuery | None = None
    """PromQL counting the samples behind the check, with the same placeholders as
    `checks[].query`. Optional for built-in checks, whose default guard counts the track's
    requests in the window."""
    min: SampleCount
    """Samples needed; 0 disables the guard."""


class Check(ApiModel):
    """One metric check. The value of the canary track must lie within `min`/`max`; with
    `relativeToStable`, canary ÷ stable must lie within its bounds too. A query error is
    an Error outcome, never a pass."""

    model_config = model_rules(
        cel(
            "has(self.builtin) != has(self.query)",
            "checks[]: set exactly one of builtin and query",
        ),
        cel(
            "has(self.min) || has(self.max) || has(self.relativeToStable)",
            "checks[]: set at least one of min, max and relativeToStable",
        ),
        cel(
            "!has(self.min) || !has(self.max) || self.min <= self.max",
            "checks[].min must be less than or equal to checks[].max",
            ".min",
        ),
        cel(
            "!has(self.minSamples) || has(self.minSamples.query) || has(self.builtin)",
            "checks[].minSamples.query is required when the check sets query",
            ".minSamples",
        ),
    )

    name: DnsLabel
    """Name of the check, unique in the analysis (including its templates); it keys the
    results in `.status`."""
    builtin: Builtin | None = None
    """A shipped query (see docs/metrics.md): per request `errorRate` (0..1),
    `latencyP95` (seconds), `costPerHour` (USD/h), `costPerRequest` (USD), `istioErrorRate`
    (0..1), `istioLatencyP95` (milliseconds); per finished task `costPerTask` (USD),
    `outputTokensPerTask`, `taskErrorRate` (0..1, provider rate limits, overload and spend
    limits excluded), `upstreamErrorShare` (those provider errors per model call, 0..1),
    `toolFailureRate` (0..1), `taskLatencyP95` and `timeToFirstTokenP95` (seconds)."""
    query: CheckQuery | None = None
    """PromQL returning one number (a scalar, or a vector with exactly one sample).
    Placeholders: `{{name}}`, `{{namespace}}`, `{{track}}` (stable or canary),
    `{{revision}}` (that track's revision), `{{window}}` and `{{workload}}`
    (`<name>-<track>`)."""
    min: Threshold | None = None
    """Lowest allowed canary value."""
    max: Threshold | None = None
    """Highest allowed canary value."""
    relative_to_stable: RelativeBounds | None = None
    """Compare canary to stable: the same query is run for the stable track and the ratio
    (and difference) must lie within these bounds. With `min`/`max` as well, `passWhen`
    says how they combine."""
    pass_when: Annotated[PassWhen, Field(json_schema_extra=OPERATOR_DEFAULT)] = PassWhen.ALL
    """`all`: every bound must hold. `any`: the check passes when at least one of its
    bounds (absolute, ratio, increase) holds."""
    window: CheckWindow | None = None
    """Range of this check's `{{window}}` (default: `analysis.window`, or the template's
    `window`)."""
    on_no_data: OnNoData = OnNoData.INCONCLUSIVE
    """Outcome when the query returns no series, NaN or an infinity: `inconclusive` waits
    for data, `fail` counts as a failed check, `pass` ignores the check."""
    min_samples: SampleGuard | None = None
    """Minimum-evidence guard. Built-in checks default to `analysis.minRequests` requests of
    the track in the window; set `{min: N}` to change that, or a query to count something
    else. Queries without a guard always count."""

    @model_validator(mode="after")
    def _consistent(self) -> Check:
        if (self.builtin is None) == (self.query is None):
            raise ValueError(f"checks[{self.name}]: set exactly one of builtin and query")
        if self.min is None and self.max is None and self.relative_to_stable is None:
            raise ValueError(
                f"checks[{self.name}]: set at least one of min, max and relativeToStable"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(
                f"checks[{self.name}].min must be less than or equal to checks[{self.name}].max"
            )
        guard = self.min_samples
        if guard is not None and guard.query is None and self.builtin is None:
            raise ValueError(
                f"checks[{self.name}].minSamples.query is required when the check sets query"
            )
        for field, text in (
            ("query", self.query),
            ("minSamples.query", guard.query if guard else None),
        ):
            if text is not None and (bad := unknown_placeholders(text)):
                raise ValueError(
                    f"checks[{self.name}].{field}: unknown placeholder {', '.join(bad)}; use"
                    f" only {', '.join('{{' + p + '}}' for p in PLACEHOLDERS)}"
                )
        if self.window is not None and parse_duration(self.window) < MIN_WINDOW_SECONDS:
            raise ValueError(f"checks[{self.name}].window must be at least 1s")
        return self


CheckList = Annotated[
    list[Check],
    Field(min_length=1, max_length=MAX_CHECKS, json_schema_extra=list_map("name")),
]
"""Checks keyed by name (server-side apply merges them by name)."""


def _duplicate_names(checks: list[Check] | None) -> list[str]:
    return sorted(n for n, k in Counter(c.name for c in checks or []).items() if k > 1)


class HarnessChecks(ApiModel):
    """The built-in checks every harness (a HarnessDeployment with `spec.model`) gets, per
    finished task and canary against stable in the same window: cost (at most 1.25 times stable),
    output tokens (1.5 times), task error rate (upstream provider classes excluded; fails
    above 5 % and 2 points over stable), the canary's share of provider rate-limit/overload
    errors (fails above 5 % and twice stable), tool-call failures (above 2 % and 2 points over
    stable), p95 task latency and p95 time to first token (1.3 times). A check of the same name
    in `checks` replaces the default one (docs/metrics.md §3)."""

    enabled: bool = True
    """Add the default harness checks (only for HarnessDeployments with `spec.model`)."""
    disabled: Annotated[list[DnsLabel], Field(max_length=16, json_schema_extra=LIST_SET)] | None = (
        None
    )
    """Names of default checks to leave out, e.g. `[time-to-first-token-p95]`."""


class TemplateRef(ApiModel):
    """A HarnessAnalysisTemplate in the HarnessDeployment's namespace."""

    name: DnsSubdomain
    """Name of the HarnessAnalysisTemplate."""


class AnalysisSpec(ApiModel):
    """Metric checks that gate a release. Every `checkInterval` the operator evaluates all
    checks once (a round): a round fails when any check fails. The release rolls back when
    `failureLimit` rounds have failed, or when `errorLimit` rounds in a row could not be
    evaluated; inconclusive rounds hold the release at its step."""

    prometheus: PrometheusSpec | None = None
    """Prometheus server to query (default: the operator's `HARNESS_PROMETHEUS_URL`)."""
    window: AnalysisWindow = "1m"
    """Default range of `{{window}}` in queries, e.g. `rate(...[1m])`."""
    check_interval: CheckInterval = "5s"
    """How often the checks run during a release, independent of `rollout.interval`, so a
    breach rolls back within seconds; at least 1s."""
    failure_limit: Annotated[int, Field(ge=1, le=1000)] = 2
    """Roll back when this many rounds of the release have failed (not necessarily in a
    row)."""
    error_limit: Annotated[int, Field(ge=1, le=1000)] = 3
    """Roll back when this many rounds in a row had a check that could not be evaluated
    (Prometheus down, bad query). Errors never count as passes."""
    min_requests: SampleCount = 20
    """Default guard of built-in per-request checks: with fewer requests of a track in the
    window, the check is Inconclusive. 0 disables it."""
    min_tasks: Annotated[SampleCount, Field(json_schema_extra=OPERATOR_DEFAULT)] = 20
    """Default guard of built-in per-task checks: agent tasks are long, so with fewer
    finished tasks of a track in the window the check is Inconclusive and the step waits."""
    harness_checks: HarnessChecks | None = None
    """The default harness checks (on for every HarnessDeployment with `spec.model` unless
    `enabled: false`)."""
    checks: CheckList | None = None
    """The checks, evaluated in order."""
    templates: (
        Annotated[
            list[TemplateRef],
            Field(min_length=1, max_length=MAX_TEMPLATES, json_schema_extra=list_map("name")),
        ]
        | None
    ) = None
    """HarnessAnalysisTemplates whose checks are appended to `checks`."""

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisSpec:
        if dup := _duplicate_names(self.checks):
            raise ValueError(f"analysis.checks: duplicate names {dup}")
        if self.templates and (
            dup := sorted(n for n, k in Counter(t.name for t in self.templates).items() if k > 1)
        ):
            raise ValueError(f"analysis.templates: duplicate names {dup}")
        if parse_duration(self.window) < MIN_WINDOW_SECONDS:
            raise ValueError("analysis.window must be at least 1s")
        if parse_duration(self.check_interval) < MIN_CHECK_INTERVAL_SECONDS:
            raise ValueError("analysis.checkInterval must be at least 1s")
        return self

    @property
    def check_interval_seconds(self) -> float:
        """`checkInterval` in seconds."""
        return parse_duration(self.check_interval)


class HarnessAnalysisTemplateSpec(ApiModel):
    """Checks shared by several HarnessDeployments, e.g. an organisation's SLOs. A
    HarnessDeployment lists the template in `spec.analysis.templates`; its checks are then
    appended to the HarnessDeployment's own."""

    checks: CheckList
    """The checks. Their names must not clash with those of the HarnessDeployment or of its
    other templates."""
    window: TemplateWindow | None = None
    """`{{window}}` of this template's checks that set none (default: the
    HarnessDeployment's `analysis.window`)."""
    min_requests: SampleCount | None = None
    """Request guard of this template's built-in checks that set no `minSamples` (default:
    the HarnessDeployment's `analysis.minRequests`)."""

    @model_validator(mode="after")
    def _consistent(self) -> HarnessAnalysisTemplateSpec:
        if dup := _duplicate_names(self.checks):
            raise ValueError(f"spec.checks: duplicate names {dup}")
        if self.window is not None and parse_duration(self.window) < MIN_WINDOW_SECONDS:
            raise ValueError("spec.window must be at least 1s")
        return self

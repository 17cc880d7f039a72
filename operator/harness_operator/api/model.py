"""`spec.model` of a HarnessDeployment: which model the harness calls, through which
provider, with which credentials and system prompt.

The operator renders the environment that the anthropic SDK and Claude Code / the Claude
Agent SDK read for the provider (`harness_operator.render.model`; names listed in
`RENDERED_ENV` and in docs/models.md), so a model, provider or prompt change is a pod
template change: a new revision, released as a canary like a new image. Before a new
revision gets any traffic the operator checks the credential and the model through the SDK
(`harness_operator.preflight`).

Credentials are only ever a Secret reference (or the pods' workload identity), never
inline. Cross-field rules are CEL (the apiserver) and pydantic (the operator) side by side,
with the same messages, as in `spec.py`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, model_validator

from harness_operator.api.types import (
    ApiModel,
    DnsSubdomain,
    cel,
    model_rules,
    validations,
)


class Provider(StrEnum):
    """Where the model is served."""

    ANTHROPIC = "anthropic"
    BEDROCK = "bedrock"
    VERTEX = "vertex"
    FOUNDRY = "foundry"
    GATEWAY = "gateway"


class PreflightMethod(StrEnum):
    """How the operator verifies a credential and model before traffic."""

    AUTO = "auto"
    MODELS_RETRIEVE = "modelsRetrieve"
    COUNT_TOKENS = "countTokens"
    MESSAGE = "message"


# --- names ----------------------------------------------------------------------------

ENV_PROVIDER: Final = "HARNESS_MODEL_PROVIDER"
"""The provider (`spec.model.provider`), for harnesses that pick their client by it."""
ENV_MODEL: Final = "ANTHROPIC_MODEL"
ENV_PROMPT_FILE: Final = "HARNESS_SYSTEM_PROMPT_FILE"
ENV_KILL_SWITCH: Final = "HARNESS_KILL_SWITCH_FILE"
"""A file whose content is `true` while the budget has stopped spending (docs/budgets.md)."""
ENV_PORT: Final = "HARNESS_PORT"
"""Where a harness serves its API and probes: `spec.port` (the container port)."""
ENV_METRICS_PORT: Final = "HARNESS_METRICS_PORT"
"""Where a harness serves /metrics: `spec.metrics.port`, else `spec.port`."""
PROVIDER_SWITCHES: Final = {
    Provider.BEDROCK: "CLAUDE_CODE_USE_BEDROCK",
    Provider.VERTEX: "CLAUDE_CODE_USE_VERTEX",
    Provider.FOUNDRY: "CLAUDE_CODE_USE_FOUNDRY",
}
"""Claude Code's provider switches; none set means the first-party API (or a gateway)."""
CREDENTIAL_ENV: Final = {
    Provider.ANTHROPIC: "ANTHROPIC_API_KEY",
    Provider.GATEWAY: "ANTHROPIC_AUTH_TOKEN",
    Provider.BEDROCK: "AWS_BEARER_TOKEN_BEDROCK",
    Provider.VERTEX: "GOOGLE_APPLICATION_CREDENTIALS",
    Provider.FOUNDRY: "ANTHROPIC_FOUNDRY_API_KEY",
}
"""Where each provider's `credentials.secretRef` goes. For Vertex the Secret holds a
service-account key (JSON) that is mounted as a file; the variable is its path."""
BASE_URL_ENV: Final = {
    Provider.ANTHROPIC: "ANTHROPIC_BASE_URL",
    Provider.GATEWAY: "ANTHROPIC_BASE_URL",
    Provider.BEDROCK: "ANTHROPIC_BEDROCK_BASE_URL",
    Provider.VERTEX: "ANTHROPIC_VERTEX_BASE_URL",
    Provider.FOUNDRY: "ANTHROPIC_FOUNDRY_BASE_URL",
}
REGION_ENV: Final = {Provider.BEDROCK: "AWS_REGION", Provider.VERTEX: "CLOUD_ML_REGION"}
PROJECT_ENV: Final = "ANTHROPIC_VERTEX_PROJECT_ID"
RESOURCE_ENV: Final = "ANTHROPIC_FOUNDRY_RESOURCE"


def _rendered(provider: Provider) -> tuple[str, ...]:
    names = [ENV_PROVIDER, ENV_MODEL, ENV_PORT, ENV_METRICS_PORT, ENV_PROMPT_FILE, ENV_KILL_SWITCH]
    names += PROVIDER_SWITCHES.values()
    names += [CREDENTIAL_ENV[provider], BASE_URL_ENV[provider]]
    if provider in REGION_ENV:
        names.append(REGION_ENV[provider])
    if provider is Provider.VERTEX:
        names.append(PROJECT_ENV)
    if provider is Provider.FOUNDRY:
        names.append(RESOURCE_ENV)
    return tuple(dict.fromkeys(names))


RENDERED_ENV: Final[dict[Provider, tuple[str, ...]]] = {p: _rendered(p) for p in Provider}
"""Every variable the operator may render for a provider. A `spec.env` entry of the same
name is rejected (it would silently override or be overridden). All providers reserve
Claude Code's switches, so that `env` can never change the provider behind the spec's
back."""

ENV_SOURCE: Final[dict[str, str]] = {
    ENV_PROVIDER: "spec.model.provider",
    ENV_MODEL: "spec.model.name",
    ENV_PORT: "spec.port",
    ENV_KILL_SWITCH: "spec.budget",
    ENV_METRICS_PORT: "spec.metrics.port",
    ENV_PROMPT_FILE: "spec.model.systemPromptRef",
    **dict.fromkeys(PROVIDER_SWITCHES.values(), "spec.model.provider"),
    **dict.fromkeys(CREDENTIAL_ENV.values(), "spec.model.credentials"),
    **dict.fromkeys(BASE_URL_ENV.values(), "spec.model.baseURL"),
    **dict.fromkeys(REGION_ENV.values(), "spec.model.region"),
    PROJECT_ENV: "spec.model.projectId",
    RESOURCE_ENV: "spec.model.resource",
}
"""Which `spec.model` field renders each variable (for collision messages)."""


def _env_by_field() -> dict[str, dict[Provider, str]]:
    """For each `spec.model` field, the variable it renders per provider."""
    by_field: dict[str, dict[Provider, str]] = {}
    for provider in Provider:
        for name in RENDERED_ENV[provider]:
            if name not in PROVIDER_SWITCHES.values() and name != ENV_PROVIDER:
                by_field.setdefault(ENV_SOURCE[name], {})[provider] = name
    return by_field


def env_collision_rules() -> list[dict[str, str]]:
    """CEL rules (for `HarnessDeploymentSpec`) rejecting a `spec.env` entry that the model
    section renders, each naming the variable and the field that renders it. One rule per
    field keeps every rule's cost constant (a single rule over a map of lists would exceed
    the apiserver's CEL cost budget)."""
    guard = "!has(self.model) || !has(self.env) || "
    fixed = [ENV_PROVIDER, *PROVIDER_SWITCHES.values()]
    names = ", ".join(f"'{n}'" for n in fixed)
    rules = [
        cel(
            guard + f"!self.env.exists(e, e.name in [{names}])",
            f"spec.env: {', '.join(fixed)} collide with spec.model.provider (the operator"
            " renders the provider's variables); remove them from spec.env",
            ".env",
        )
    ]
    for field, per_provider in _env_by_field().items():
        table = "{" + ", ".join(f"'{p}': '{n}'" for p, n in per_provider.items()) + "}"
        has = f"self.model.provider in {table}"
        variable = f"{table}[self.model.provider]"
        rules.append(
            cel(
                guard + f"!({has}) || !self.env.exists(e, e.name == {variable})",
                f"spec.env: an entry collides with a variable {field} renders; remove it"
                " from spec.env",
                ".env",
                message_expression=(
                    f"'spec.env ' + {variable} + ' collides with {field} (the operator"
                    " renders it); remove it from spec.env'"
                ),
            )
        )
    return rules


def env_collisions(provider: Provider, names: list[str]) -> list[str]:
    """`spec.env` names that the model section renders, each with the field that does."""
    reserved = RENDERED_ENV[provider]
    return [
        f"spec.env {n} collides with {ENV_SOURCE[n]} (the operator renders it); remove it"
        " from spec.env"
        for n in names
        if n in reserved
    ]


# --- model ids ------------------------------------------------------------------------

MOVING_ALIASES: Final = ("default", "best", "opus", "sonnet", "haiku", "opusplan")
"""Claude Code's model aliases: each follows whatever model is newest, so a pod restart
could change the model without a release."""
_ALIASES: Final = (*MOVING_ALIASES, "opus[1m]", "sonnet[1m]")
ModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        pattern=r"^[^\s]+$",
        json_schema_extra=validations(
            cel(
                f"!self.endsWith('-latest') && !(self in [{', '.join(repr(a) for a in _ALIASES)}])",
                "spec.model.name must be a pinned model id (e.g. claude-sonnet-4-5-20250929),"
                " not a moving alias such as '-latest', 'sonnet' or 'opus'",
            )
        ),
    ),
]


def moving_alias(name: str) -> bool:
    """Whether `name` is an alias that moves to newer models (rejected)."""
    return name.endswith("-latest") or name in _ALIASES


# --- sub-objects ----------------------------------------------------------------------


class SecretKeySelector(ApiModel):
    """A key of a Secret in the HarnessDeployment's namespace."""

    name: DnsSubdomain
    """Name of the Secret. Its content is part of the revision: rotating the credential
    releases the pods anew (as a canary, after a preflight of the new value)."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
    """Key within the Secret."""


class ConfigMapKeySelector(ApiModel):
    """A key of a ConfigMap in the HarnessDeployment's namespace."""

    name: DnsSubdomain
    """Name of the ConfigMap. Its content is part of the revision."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
    """Key within the ConfigMap."""


class WorkloadIdentity(ApiModel):
    """The pods authenticate as a Kubernetes ServiceAccount bound to a cloud identity
    (EKS IRSA or Pod Identity, GKE Workload Identity, Azure Workload Identity) instead of a
    stored credential."""

    service_account_name: DnsSubdomain
    """The ServiceAccount of the pods; its token is mounted."""


class ModelCredentials(ApiModel):
    """How the harness authenticates to the provider: exactly one of a Secret key or the
    pods' workload identity (cloud providers only)."""

    model_config = model_rules(
        cel(
            "has(self.secretRef) != has(self.workloadIdentity)",
            "spec.model.credentials: set exactly one of secretRef and workloadIdentity",
        )
    )

    secret_ref: SecretKeySelector | None = None
    """The Secret key holding the credential: an API key (anthropic, foundry), a bearer
    token (gateway, and Bedrock API keys), or a service-account key file (vertex). Read by
    the pods from the Secret, and by the operator, in memory only, for the preflight."""
    workload_identity: WorkloadIdentity | None = None
    """Use the pods' cloud workload identity (bedrock, vertex, foundry). The operator cannot
    act as the pods, so their credentials are not verified before traffic."""

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelCredentials:
        if (self.secret_ref is None) == (self.workload_identity is None):
            raise ValueError(
                "spec.model.credentials: set exactly one of secretRef and workloadIdentity"
            )
        return self


class Preflight(ApiModel):
    """The credential and model check that runs before a new revision gets traffic."""

    enabled: bool = True
    """Verify the credential and the model before a revision gets traffic (and before a
    first deploy reports Ready). A failure holds the release at weight 0."""
    method: PreflightMethod = PreflightMethod.AUTO
    """`auto`: the cheapest call that costs nothing — `models.retrieve` (anthropic,
    gateway), `messages.count_tokens` (vertex); bedrock and foundry have no free call, so
    `auto` reports them unverified. `modelsRetrieve` or `countTokens` force a call (e.g. a
    gateway without a models endpoint); `message` sends a 1-token message, which is billed,
    and works on every provider."""


UsdPerMillion = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]


class Pricing(ApiModel):
    """What the model costs, in USD per million tokens of each kind. The cost checks use
    the harness's own cost counter (`harness_cost_usd_total`) when it exports one, and
    otherwise its token counters times these prices, so a harness that exports only tokens
    is still judged on cost."""

    input: UsdPerMillion
    """Uncached input tokens."""
    output: UsdPerMillion
    """Output tokens."""
    cache_read: UsdPerMillion = 0
    """Input tokens read from the prompt cache."""
    cache_write: UsdPerMillion = 0
    """Input tokens written to the prompt cache."""


# --- the section ----------------------------------------------------------------------

_SETTINGS_RULES = (
    cel(
        "!has(self.region) || self.provider in ['bedrock', 'vertex']",
        "spec.model.region applies only to providers bedrock and vertex",
        ".region",
    ),
    cel(
        "!(self.provider in ['bedrock', 'vertex']) || has(self.region)",
        "spec.model.region is required by providers bedrock and vertex",
        ".region",
    ),
    cel(
        "!has(self.projectId) || self.provider == 'vertex'",
        "spec.model.projectId applies only to provider vertex",
        ".projectId",
    ),
    cel(
        "!has(self.resource) || self.provider == 'foundry'",
        "spec.model.resource applies only to provider foundry",
        ".resource",
    ),
    cel(
        "self.provider != 'foundry' || has(self.resource) != has(self.baseURL)",
        "spec.model: provider foundry needs exactly one of resource and baseURL",
        ".resource",
    ),
    cel(
        "self.provider != 'gateway' || has(self.baseURL)",
        "spec.model.baseURL is required by provider gateway",
        ".baseURL",
    ),
    cel(
        "self.provider in ['bedrock', 'vertex', 'foundry'] || has(self.credentials)",
        "spec.model.credentials is required by providers anthropic and gateway",
        ".credentials",
    ),
    cel(
        "!has(self.credentials) || !has(self.credentials.workloadIdentity)"
        " || self.provider in ['bedrock', 'vertex', 'foundry']",
        "spec.model.credentials.workloadIdentity applies only to providers bedrock, vertex"
        " and foundry",
        ".credentials",
    ),
)

Region = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
BaseUrl = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s]+$")]


class ModelSpec(ApiModel):
    """The model the harness calls. Changing any of it (or the content of the credential
    Secret or prompt ConfigMap) is a new revision, released as a canary."""

    model_config = model_rules(*_SETTINGS_RULES)

    provider: Provider
    """`anthropic` (the Claude API), `bedrock` (AWS), `vertex` (Google Cloud), `foundry`
    (Microsoft), or `gateway` (an Anthropic-compatible proxy such as LiteLLM, at
    `baseURL`)."""
    name: ModelName
    """The model id, pinned to one snapshot as the provider spells it, e.g.
    `claude-sonnet-4-5-20250929`, `claude-sonnet-4-5@20250929` (vertex),
    `anthropic.claude-sonnet-4-5-20250929-v1:0` (bedrock). Moving aliases (`-latest`,
    `sonnet`, `opus`, ...) are rejected: they change the model without a release."""
    region: Region | None = None
    """Cloud region (bedrock: `AWS_REGION`; vertex: `CLOUD_ML_REGION`, e.g. `us-east5` or
    `global`). Required by bedrock and vertex."""
    project_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """Google Cloud project (vertex); else taken from the credentials."""
    resource: (
        Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-z0-9-]+$")] | None
    ) = None
    """Azure AI Foundry resource name (foundry), i.e. `<resource>.services.ai.azure.com`."""
    base_url: Annotated[BaseUrl | None, Field(alias="baseURL")] = None
    """Endpoint override: required for a gateway; optional otherwise (e.g. a regional or
    private endpoint)."""
    credentials: ModelCredentials | None = None
    """The credential (a Secret key) or the pods' workload identity. Required by anthropic
    and gateway."""
    system_prompt_ref: ConfigMapKeySelector | None = None
    """A ConfigMap key holding the system prompt, mounted read-only as a file whose path is
    in `HARNESS_SYSTEM_PROMPT_FILE`. Editing it releases a canary."""
    preflight: Preflight = Field(default_factory=Preflight)
    """The credential and model check before traffic."""
    pricing: Pricing | None = None
    """Prices per million tokens, for cost checks and budgets when the harness exports
    tokens but no cost. Not rendered into the pods: changing it is not a release."""

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        provider = self.provider
        cloud = provider in (Provider.BEDROCK, Provider.VERTEX, Provider.FOUNDRY)
        if moving_alias(self.name):
            raise ValueError(
                "spec.model.name must be a pinned model id (e.g. claude-sonnet-4-5-20250929),"
                " not a moving alias such as '-latest', 'sonnet' or 'opus'"
            )
        if self.region is not None and provider not in REGION_ENV:
            raise ValueError("spec.model.region applies only to providers bedrock and vertex")
        if self.region is None and provider in REGION_ENV:
            raise ValueError("spec.model.region is required by providers bedrock and vertex")
        if self.project_id is not None and provider is not Provider.VERTEX:
            raise ValueError("spec.model.projectId applies only to provider vertex")
        if self.resource is not None and provider is not Provider.FOUNDRY:
            raise ValueError("spec.model.resource applies only to provider foundry")
        if provider is Provider.FOUNDRY and (self.resource is None) == (self.base_url is None):
            raise ValueError(
                "spec.model: provider foundry needs exactly one of resource and baseURL"
            )
        if provider is Provider.GATEWAY and self.base_url is None:
            raise ValueError("spec.model.baseURL is required by provider gateway")
        if not cloud and self.credentials is None:
            raise ValueError(
                "spec.model.credentials is required by providers anthropic and gateway"
            )
        if not cloud and self.credentials is not None and self.credentials.workload_identity:
            raise ValueError(
                "spec.model.credentials.workloadIdentity applies only to providers bedrock,"
                " vertex and foundry"
            )
        return self

    @property
    def secret_ref(self) -> SecretKeySelector | None:
        """The credential's Secret key, if the credential is a Secret."""
        return self.credentials.secret_ref if self.credentials else None

    @property
    def service_account_name(self) -> str | None:
        """The workload-identity ServiceAccount, if any."""
        identity = self.credentials.workload_identity if self.credentials else None
        return identity.service_account_name if identity else None

    def describe(self) -> str:
        """`provider/name`, as `kubectl get hd` and Events show it."""
        return f"{self.provider}/{self.name}"

"""`spec.model`: validation of provider settings and model ids, and what it renders into the
pods for each provider (the environment the anthropic SDK and Claude Code read)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from harness_operator.api.model import RENDERED_ENV, Provider, moving_alias
from harness_operator.naming import Track
from harness_operator.preflight.calls import dated_snapshot
from harness_operator.render import ConfigRef, ReleaseState, referenced_configs, revision
from harness_operator.render.workload import render_deployment
from unit.render_helpers import HD, app_container, spec

SONNET = "claude-sonnet-4-5-20250929"
KEY = {"secretRef": {"name": "model-key", "key": "api-key"}}
MODELS: dict[str, dict[str, Any]] = {
    "anthropic": {"provider": "anthropic", "name": SONNET, "credentials": KEY},
    "gateway": {
        "provider": "gateway",
        "name": SONNET,
        "baseURL": "https://llm-gateway.internal:4000",
        "credentials": KEY,
    },
    "bedrock": {
        "provider": "bedrock",
        "name": "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "region": "eu-central-1",
        "credentials": KEY,
    },
    "vertex": {
        "provider": "vertex",
        "name": "claude-sonnet-4-5@20250929",
        "region": "us-east5",
        "projectId": "acme-agents",
        "credentials": {"secretRef": {"name": "gcp-sa", "key": "key.json"}},
    },
    "foundry": {"provider": "foundry", "name": SONNET, "resource": "acme-ai", "credentials": KEY},
}


def env_of(s: Any) -> dict[str, Any]:
    container = app_container(render_deployment(HD, s, ReleaseState.at_rest(s), Track.STABLE))
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def key_ref(name: str = "model-key", key: str = "api-key") -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


PORTS = {"HARNESS_PORT": "8080", "HARNESS_METRICS_PORT": "8080"}
KILL_SWITCH = {"HARNESS_KILL_SWITCH_FILE": "/var/run/harness/controls/stop"}
EXPECTED_ENV: dict[str, dict[str, Any]] = {
    "anthropic": {
        "HARNESS_MODEL_PROVIDER": "anthropic",
        "ANTHROPIC_MODEL": SONNET,
        **PORTS,
        "ANTHROPIC_API_KEY": key_ref(),
    },
    "gateway": {
        "HARNESS_MODEL_PROVIDER": "gateway",
        "ANTHROPIC_MODEL": SONNET,
        **PORTS,
        "ANTHROPIC_BASE_URL": "https://llm-gateway.internal:4000",
        "ANTHROPIC_AUTH_TOKEN": key_ref(),
    },
    "bedrock": {
        "HARNESS_MODEL_PROVIDER": "bedrock",
        "ANTHROPIC_MODEL": "anthropic.claude-sonnet-4-5-20250929-v1:0",
        **PORTS,
        "CLAUDE_CODE_USE_BEDROCK": "1",
        "AWS_REGION": "eu-central-1",
        "AWS_BEARER_TOKEN_BEDROCK": key_ref(),
    },
    "vertex": {
        "HARNESS_MODEL_PROVIDER": "vertex",
        "ANTHROPIC_MODEL": "claude-sonnet-4-5@20250929",
        **PORTS,
        "CLAUDE_CODE_USE_VERTEX": "1",
        "CLOUD_ML_REGION": "us-east5",
        "ANTHROPIC_VERTEX_PROJECT_ID": "acme-agents",
        "GOOGLE_APPLICATION_CREDENTIALS": "/var/run/harness/model/credentials.json",
    },
    "foundry": {
        "HARNESS_MODEL_PROVIDER": "foundry",
        "ANTHROPIC_MODEL": SONNET,
        **PORTS,
        "CLAUDE_CODE_USE_FOUNDRY": "1",
        "ANTHROPIC_FOUNDRY_RESOURCE": "acme-ai",
        "ANTHROPIC_FOUNDRY_API_KEY": key_ref(),
    },
}


@pytest.mark.parametrize("provider", list(MODELS))
def test_each_provider_renders_the_variables_its_sdk_reads(provider: str) -> None:
    rendered = env_of(spec(model=MODELS[provider]))
    assert rendered == {**EXPECTED_ENV[provider], **KILL_SWITCH}
    assert set(rendered) <= set(RENDERED_ENV[Provider(provider)])


def test_vertex_key_file_is_mounted_read_only() -> None:
    s = spec(model=MODELS["vertex"])
    deployment = render_deployment(HD, s, ReleaseState.at_rest(s), Track.STABLE)
    pod = deployment["spec"]["template"]["spec"]
    assert {
        "name": "harness-model-credentials",
        "secret": {
            "secretName": "gcp-sa",
            "items": [{"key": "key.json", "path": "credentials.json"}],
        },
    } in pod["volumes"]
    assert {
        "name": "harness-model-credentials",
        "mountPath": "/var/run/harness/model",
        "readOnly": True,
    } in app_container(deployment)["volumeMounts"]


def test_system_prompt_is_a_mounted_file() -> None:
    s = spec(model={**MODELS["anthropic"], "systemPromptRef": {"name": "prompts", "key": "v2"}})
    deployment = render_deployment(HD, s, ReleaseState.at_rest(s), Track.CANARY)
    assert env_of(s)["HARNESS_SYSTEM_PROMPT_FILE"] == "/var/run/harness/prompt/system-prompt.txt"
    pod = deployment["spec"]["template"]["spec"]
    assert {
        "name": "harness-system-prompt",
        "configMap": {"name": "prompts", "items": [{"key": "v2", "path": "system-prompt.txt"}]},
    } in pod["volumes"]
    assert {
        "name": "harness-system-prompt",
        "mountPath": "/var/run/harness/prompt",
        "readOnly": True,
    } in app_container(deployment)["volumeMounts"]


def test_user_env_follows_the_rendered_env() -> None:
    s = spec(model=MODELS["anthropic"], env=[{"name": "HARNESS_MAX_TURNS", "value": "4"}])
    names = list(env_of(s))
    assert names[-1] == "HARNESS_MAX_TURNS"
    assert names[:4] == [
        "HARNESS_MODEL_PROVIDER",
        "ANTHROPIC_MODEL",
        "HARNESS_PORT",
        "HARNESS_METRICS_PORT",
    ]


def test_workload_identity_sets_the_service_account() -> None:
    model = {
        "provider": "bedrock",
        "name": "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "region": "us-east-1",
        "credentials": {"workloadIdentity": {"serviceAccountName": "agent-irsa"}},
    }
    s = spec(model=model)
    pod = render_deployment(HD, s, ReleaseState.at_rest(s), Track.STABLE)["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "agent-irsa"
    assert pod["spec"]["automountServiceAccountToken"] is True
    assert "AWS_BEARER_TOKEN_BEDROCK" not in env_of(s)


def test_no_model_renders_nothing_new() -> None:
    assert env_of(spec()) == {}


def test_model_prompt_and_credential_are_referenced_configs() -> None:
    s = spec(model={**MODELS["anthropic"], "systemPromptRef": {"name": "prompts", "key": "v2"}})
    assert referenced_configs(s) == [
        ConfigRef("ConfigMap", "prompts"),
        ConfigRef("Secret", "model-key"),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"name": "claude-opus-4-1-20250805"},
        {"provider": "gateway", "baseURL": "https://gw.internal"},
        {"baseURL": "https://eu.api.example.com"},
        {"systemPromptRef": {"name": "prompts", "key": "v3"}},
        {"credentials": {"secretRef": {"name": "model-key", "key": "other"}}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_model_change_is_a_new_revision(change: dict[str, Any]) -> None:
    base = spec(model=MODELS["anthropic"])
    assert revision(spec(model={**MODELS["anthropic"], **change}), {}) != revision(base, {})


def test_preflight_settings_are_not_a_revision() -> None:
    base = spec(model=MODELS["anthropic"])
    edited = spec(model={**MODELS["anthropic"], "preflight": {"enabled": False}})
    assert revision(edited, {}) == revision(base, {})


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("alias latest", {**MODELS["anthropic"], "name": "claude-sonnet-4-5-latest"}, "moving alias"),
    ("alias sonnet", {**MODELS["anthropic"], "name": "sonnet"}, "moving alias"),
    ("region on anthropic", {**MODELS["anthropic"], "region": "us"}, "spec.model.region applies"),
    (
        "bedrock without region",
        {k: v for k, v in MODELS["bedrock"].items() if k != "region"},
        "spec.model.region is required",
    ),
    ("project on bedrock", {**MODELS["bedrock"], "projectId": "p"}, "spec.model.projectId"),
    ("resource on vertex", {**MODELS["vertex"], "resource": "r"}, "spec.model.resource"),
    (
        "foundry with resource and baseURL",
        {**MODELS["foundry"], "baseURL": "https://x.example.com/anthropic/"},
        "exactly one of resource and baseURL",
    ),
    (
        "gateway without baseURL",
        {k: v for k, v in MODELS["gateway"].items() if k != "baseURL"},
        "spec.model.baseURL is required",
    ),
    (
        "anthropic without credentials",
        {k: v for k, v in MODELS["anthropic"].items() if k != "credentials"},
        "spec.model.credentials is required",
    ),
    (
        "workload identity on anthropic",
        {**MODELS["anthropic"], "credentials": {"workloadIdentity": {"serviceAccountName": "a"}}},
        "workloadIdentity applies only",
    ),
    (
        "both credentials",
        {
            **MODELS["bedrock"],
            "credentials": {**KEY, "workloadIdentity": {"serviceAccountName": "a"}},
        },
        "exactly one of secretRef and workloadIdentity",
    ),
    ("unknown provider", {**MODELS["anthropic"], "provider": "openai"}, "provider"),
    ("inline key", {**MODELS["anthropic"], "apiKey": "sk-inline"}, "apiKey"),
]


@pytest.mark.parametrize(("model", "message"), [pytest.param(m, t, id=i) for i, m, t in INVALID])
def test_invalid_model_sections_name_the_field(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(model=model)
    assert message in str(caught.value)


def test_env_collision_names_both_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        spec(model=MODELS["bedrock"], env=[{"name": "AWS_REGION", "value": "us-east-1"}])
    assert "spec.env AWS_REGION collides with spec.model.region" in str(caught.value)


def test_env_names_of_other_providers_are_free() -> None:
    s = spec(model=MODELS["anthropic"], env=[{"name": "AWS_REGION", "value": "us-east-1"}])
    assert env_of(s)["AWS_REGION"] == "us-east-1"


def test_provider_switches_are_reserved_for_every_provider() -> None:
    with pytest.raises(ValidationError, match="CLAUDE_CODE_USE_VERTEX collides"):
        spec(model=MODELS["anthropic"], env=[{"name": "CLAUDE_CODE_USE_VERTEX", "value": "1"}])


def test_reserved_mount_prefix() -> None:
    with pytest.raises(ValidationError, match="/var/run/harness/ is reserved"):
        spec(
            podTemplate={
                "volumes": [{"name": "x", "emptyDir": {}}],
                "volumeMounts": [{"name": "x", "mountPath": "/var/run/harness/prompt"}],
            }
        )


def test_service_account_must_match_the_workload_identity() -> None:
    model = {**MODELS["vertex"], "credentials": {"workloadIdentity": {"serviceAccountName": "a"}}}
    with pytest.raises(ValidationError, match="must equal"):
        spec(model=model, podTemplate={"serviceAccountName": "b"})
    assert spec(model=model, podTemplate={"serviceAccountName": "a"}).model is not None


@pytest.mark.parametrize(
    ("name", "moving", "snapshot"),
    [
        ("claude-sonnet-4-5-20250929", False, None),
        ("claude-sonnet-4-6", False, None),
        ("claude-sonnet-4-5", False, "claude-sonnet-4-5-20250929"),
        ("claude-sonnet-4-5@20250929", False, None),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", False, None),
        ("claude-sonnet-5", False, None),
        ("claude-3-7-sonnet-latest", True, None),
        ("opus", True, None),
        ("sonnet[1m]", True, None),
    ],
)
def test_model_id_pinning(name: str, moving: bool, snapshot: str | None) -> None:
    """Moving aliases are rejected; an id the SDK knows as an alias of a dated snapshot is
    only warned about (newer models have no date, so a missing date proves nothing)."""
    assert moving_alias(name) is moving
    assert dated_snapshot(name) == snapshot


def test_the_harness_is_told_where_to_listen() -> None:
    """Probes, Services and scrape annotations point at spec.port / spec.metrics.port; a
    harness that listens elsewhere would never be ready."""
    env = env_of(spec(model=MODELS["anthropic"], port=8000, metrics={"port": 9100}))
    assert (env["HARNESS_PORT"], env["HARNESS_METRICS_PORT"]) == ("8000", "9100")
    with pytest.raises(ValidationError, match=r"spec\.env HARNESS_PORT collides with spec\.port"):
        spec(model=MODELS["anthropic"], env=[{"name": "HARNESS_PORT", "value": "1"}])

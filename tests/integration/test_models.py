"""`spec.model` end to end: the real apiserver rejects invalid model sections and colliding
env naming the fields; the operator renders each provider's environment; a model or prompt
change is released as a canary and an analysis edit is not; the credential preflight (the
anthropic SDK against the local fake model API) holds a revision whose key is refused with
no canary pods and no traffic, until the Secret is fixed; 429/529 during preflight neither
pass nor fail it; and the key never shows up anywhere the operator writes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from fakeapi import FakeModelAPI, Fault, ModelBehaviour
from scenarios import Harnesses
from testbed import OperatorProcess, canary_weight, eventually

pytestmark = pytest.mark.usefixtures("crds")

SONNET, OPUS = "claude-sonnet-4-6", "claude-opus-4-6"
GOOD_KEY = "sk-test-good-5f2c9a1e7d"
BAD_KEY = "sk-test-revoked-0b8d3f6a"
NEW_KEY = "sk-test-rotated-91c4e2b7"


def model(api: FakeModelAPI, name: str = SONNET, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "anthropic",
        "name": name,
        "baseURL": api.url,
        "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
        **extra,
    }


def harness_spec(api: FakeModelAPI, **extra: Any) -> dict[str, Any]:
    return {
        "image": "ghcr.io/acme/agent:1.0",
        "port": 8000,
        "replicas": 2,
        "rollout": {"steps": [{"weight": 50}], "interval": "2s", "progressDeadlineSeconds": 60},
        # kwok's pods run nothing, so there are no task metrics to judge: no analysis.
        "analysis": {"harnessChecks": {"enabled": False}},
        "model": model(api),
        **extra,
    }


def put_secret(core: client.CoreV1Api, namespace: str, key: str) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="model-key"), string_data={"api-key": key}
    )
    try:
        core.create_namespaced_secret(namespace, body)
    except client.ApiException as err:
        if err.status != 409:
            raise
        core.replace_namespaced_secret("model-key", namespace, body)


def status(harness: Harnesses, name: str = "agent") -> dict[str, Any]:
    result: dict[str, Any] = harness.get(name).get("status") or {}
    return result


def condition(harness: Harnesses, type_: str, name: str = "agent") -> dict[str, Any]:
    return harness.condition(name, type_) or {}


def deployed(harness: Harnesses, api: FakeModelAPI, core: client.CoreV1Api) -> dict[str, Any]:
    api.accept_key(GOOD_KEY)
    api.set_model(SONNET, ModelBehaviour())
    api.set_model(OPUS, ModelBehaviour())
    put_secret(core, harness.namespace, GOOD_KEY)
    harness.create("agent", harness_spec(api))
    harness.wait_ready("agent")
    return eventually(
        lambda: (s := status(harness)).get("phase") == "Ready" and s, what="phase Ready"
    )


# --- admission ---------------------------------------------------------------------------

KEY_REF = {"secretRef": {"name": "k", "key": "api-key"}}
IDENTITY = {"workloadIdentity": {"serviceAccountName": "agent"}}
INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "moving alias",
        {
            "model": {
                "provider": "anthropic",
                "name": "claude-3-7-sonnet-latest",
                "credentials": KEY_REF,
            }
        },
        "spec.model.name must be a pinned model id",
    ),
    (
        "Claude Code alias",
        {"model": {"provider": "anthropic", "name": "opus", "credentials": KEY_REF}},
        "not a moving alias",
    ),
    (
        "region on anthropic",
        {
            "model": {
                "provider": "anthropic",
                "name": SONNET,
                "region": "us",
                "credentials": KEY_REF,
            }
        },
        "spec.model.region applies only to providers bedrock and vertex",
    ),
    (
        "bedrock without region",
        {"model": {"provider": "bedrock", "name": "anthropic.x-v1:0", "credentials": IDENTITY}},
        "spec.model.region is required by providers bedrock and vertex",
    ),
    (
        "projectId on bedrock",
        {
            "model": {
                "provider": "bedrock",
                "name": "anthropic.x-v1:0",
                "region": "us-east-1",
                "projectId": "p",
                "credentials": IDENTITY,
            }
        },
        "spec.model.projectId applies only to provider vertex",
    ),
    (
        "resource on vertex",
        {
            "model": {
                "provider": "vertex",
                "name": "claude-x@20250101",
                "region": "global",
                "resource": "r",
                "credentials": IDENTITY,
            }
        },
        "spec.model.resource applies only to provider foundry",
    ),
    (
        "foundry without resource or baseURL",
        {"model": {"provider": "foundry", "name": SONNET, "credentials": IDENTITY}},
        "provider foundry needs exactly one of resource and baseURL",
    ),
    (
        "gateway without baseURL",
        {"model": {"provider": "gateway", "name": SONNET, "credentials": KEY_REF}},
        "spec.model.baseURL is required by provider gateway",
    ),
    (
        "anthropic without credentials",
        {"model": {"provider": "anthropic", "name": SONNET}},
        "spec.model.credentials is required by providers anthropic and gateway",
    ),
    (
        "workload identity on anthropic",
        {"model": {"provider": "anthropic", "name": SONNET, "credentials": IDENTITY}},
        "workloadIdentity applies only to providers bedrock, vertex and foundry",
    ),
    (
        "both credentials",
        {
            "model": {
                "provider": "foundry",
                "name": SONNET,
                "resource": "r",
                "credentials": {**KEY_REF, **IDENTITY},
            }
        },
        "set exactly one of secretRef and workloadIdentity",
    ),
    (
        # There is no field for an inline key: the apiserver prunes it, and then the
        # credential is missing.
        "an inline key",
        {"model": {"provider": "anthropic", "name": SONNET, "apiKey": "sk-inline"}},
        "spec.model.credentials is required",
    ),
    (
        "env collides with the credential",
        {
            "model": {"provider": "anthropic", "name": SONNET, "credentials": KEY_REF},
            "env": [{"name": "ANTHROPIC_API_KEY", "value": "sk-x"}],
        },
        "spec.env ANTHROPIC_API_KEY collides with spec.model.credentials",
    ),
    (
        "env collides with the model name",
        {
            "model": {"provider": "anthropic", "name": SONNET, "credentials": KEY_REF},
            "env": [{"name": "ANTHROPIC_MODEL", "value": OPUS}],
        },
        "spec.env ANTHROPIC_MODEL collides with spec.model.name",
    ),
    (
        "env switches the provider",
        {
            "model": {"provider": "anthropic", "name": SONNET, "credentials": KEY_REF},
            "env": [{"name": "CLAUDE_CODE_USE_BEDROCK", "value": "1"}],
        },
        "collide with spec.model.provider",
    ),
    (
        "env collides with the region",
        {
            "model": {
                "provider": "vertex",
                "name": "claude-x@20250101",
                "region": "global",
                "credentials": IDENTITY,
            },
            "env": [{"name": "CLOUD_ML_REGION", "value": "us-east5"}],
        },
        "spec.env CLOUD_ML_REGION collides with spec.model.region",
    ),
    (
        "service account differs from the workload identity",
        {
            "model": {
                "provider": "bedrock",
                "name": "anthropic.x-v1:0",
                "region": "us-east-1",
                "credentials": IDENTITY,
            },
            "podTemplate": {"serviceAccountName": "other"},
        },
        "must equal spec.model.credentials.workloadIdentity.serviceAccountName",
    ),
    (
        "a mount under the operator's prefix",
        {
            "podTemplate": {
                "volumes": [{"name": "x", "emptyDir": {}}],
                "volumeMounts": [{"name": "x", "mountPath": "/var/run/harness/prompt"}],
            }
        },
        "/var/run/harness/ is reserved for the operator",
    ),
    (
        "a reserved volume name",
        {"podTemplate": {"volumes": [{"name": "harness-system-prompt", "emptyDir": {}}]}},
        "reserved for the operator",
    ),
]


@pytest.mark.parametrize(("extra", "message"), [pytest.param(e, m, id=i) for i, e, m in INVALID])
def test_the_apiserver_rejects_invalid_model_sections(
    harness: Harnesses, extra: dict[str, Any], message: str
) -> None:
    err = harness.try_create("bad", {"image": "ghcr.io/acme/agent:1.0", **extra})
    assert err is not None, "accepted"
    assert err.status == 422, err.body
    assert message in err.body, err.body


def test_other_providers_variables_stay_free_in_env(harness: Harnesses) -> None:
    spec = {
        "image": "ghcr.io/acme/agent:1.0",
        "model": {"provider": "anthropic", "name": SONNET, "credentials": KEY_REF},
        "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
    }
    assert harness.try_create("ok", spec) is None


# --- rendering ---------------------------------------------------------------------------

PROVIDERS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "gateway": (
        {
            "provider": "gateway",
            "name": SONNET,
            "baseURL": "https://llm-gateway.internal:4000",
            "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
        },
        {
            "HARNESS_MODEL_PROVIDER": "gateway",
            "ANTHROPIC_MODEL": SONNET,
            "HARNESS_PORT": "8080",
            "HARNESS_METRICS_PORT": "8080",
            "ANTHROPIC_BASE_URL": "https://llm-gateway.internal:4000",
            "ANTHROPIC_AUTH_TOKEN": {"secretKeyRef": {"name": "model-key", "key": "api-key"}},
        },
    ),
    "bedrock": (
        {
            "provider": "bedrock",
            "name": "anthropic.claude-sonnet-4-6",
            "region": "eu-central-1",
            "credentials": {"workloadIdentity": {"serviceAccountName": "agent-irsa"}},
        },
        {
            "HARNESS_MODEL_PROVIDER": "bedrock",
            "ANTHROPIC_MODEL": "anthropic.claude-sonnet-4-6",
            "HARNESS_PORT": "8080",
            "HARNESS_METRICS_PORT": "8080",
            "CLAUDE_CODE_USE_BEDROCK": "1",
            "AWS_REGION": "eu-central-1",
        },
    ),
    "vertex": (
        {
            "provider": "vertex",
            "name": "claude-sonnet-4-6",
            "region": "us-east5",
            "projectId": "acme-agents",
            "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
        },
        {
            "HARNESS_MODEL_PROVIDER": "vertex",
            "ANTHROPIC_MODEL": "claude-sonnet-4-6",
            "HARNESS_PORT": "8080",
            "HARNESS_METRICS_PORT": "8080",
            "CLAUDE_CODE_USE_VERTEX": "1",
            "CLOUD_ML_REGION": "us-east5",
            "ANTHROPIC_VERTEX_PROJECT_ID": "acme-agents",
            "GOOGLE_APPLICATION_CREDENTIALS": "/var/run/harness/model/credentials.json",
        },
    ),
    "foundry": (
        {
            "provider": "foundry",
            "name": SONNET,
            "resource": "acme-ai",
            "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
        },
        {
            "HARNESS_MODEL_PROVIDER": "foundry",
            "ANTHROPIC_MODEL": SONNET,
            "HARNESS_PORT": "8080",
            "HARNESS_METRICS_PORT": "8080",
            "CLAUDE_CODE_USE_FOUNDRY": "1",
            "ANTHROPIC_FOUNDRY_RESOURCE": "acme-ai",
            "ANTHROPIC_FOUNDRY_API_KEY": {"secretKeyRef": {"name": "model-key", "key": "api-key"}},
        },
    ),
}


def test_each_provider_renders_its_environment(
    harness: Harnesses,
    operator: OperatorProcess,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    namespace: str,
) -> None:
    put_secret(core, namespace, GOOD_KEY)
    for provider, (section, _) in PROVIDERS.items():
        spec = {"image": "ghcr.io/acme/agent:1.0", "model": section}
        spec["model"] = {**section, "preflight": {"enabled": False}}
        harness.create(provider, spec)
    for provider, (_, expected) in PROVIDERS.items():
        deployment = eventually(
            lambda p=provider: _read(apps, namespace, f"{p}-stable"), what=f"{provider}-stable"
        )
        (container,) = deployment.spec.template.spec.containers
        env = {e.name: _env_value(e) for e in container.env or []}
        kill_switch = {"HARNESS_KILL_SWITCH_FILE": "/var/run/harness/controls/stop"}
        assert env == {**expected, **kill_switch}, provider
    vertex = apps.read_namespaced_deployment("vertex-stable", namespace).spec.template.spec
    mounted = [v for v in vertex.volumes if v.name == "harness-model-credentials"]
    assert mounted
    assert mounted[0].secret.secret_name == "model-key"
    bedrock = apps.read_namespaced_deployment("bedrock-stable", namespace).spec.template.spec
    assert bedrock.service_account_name == "agent-irsa"


def _read(apps: client.AppsV1Api, namespace: str, name: str) -> Any:
    try:
        return apps.read_namespaced_deployment(name, namespace)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def _env_value(env: Any) -> Any:
    if env.value is not None:
        return env.value
    ref = env.value_from.secret_key_ref
    return {"secretKeyRef": {"name": ref.name, "key": ref.key}}


# --- releases ----------------------------------------------------------------------------


def test_a_model_change_is_released_and_an_analysis_edit_is_not(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    core: client.CoreV1Api,
    kubectl: Any,
    namespace: str,
) -> None:
    before = deployed(harness, fake_api, core)
    assert before["stableModel"] == f"anthropic/{SONNET}"

    # An analysis (and rollout) edit: same pods, so no release.
    harness.patch_spec(
        "agent",
        {
            "analysis": {"checks": [{"name": "cost", "builtin": "costPerRequest", "max": 1.0}]},
            "rollout": {"interval": "3s"},
        },
    )
    eventually(
        lambda: (
            status(harness).get("observedGeneration")
            == harness.get("agent")["metadata"]["generation"]
        ),
        what="the edit to be observed",
    )
    after = status(harness)
    assert after["stableRevision"] == before["stableRevision"]
    assert after.get("releaseCount") == before.get("releaseCount")
    assert after["phase"] == "Ready"

    # A model change (and dropping the analysis, which has no metrics to read here): a
    # canary on the new model, promoted.
    harness.patch_spec("agent", {"model": model(fake_api, OPUS), "analysis": {"checks": None}})
    releasing = eventually(
        lambda: (
            (s := status(harness)).get("canaryModel") == f"anthropic/{OPUS}"
            and s.get("phase") == "Progressing"
            and s
        ),
        what="a release of the new model",
    )
    assert releasing["stableModel"] == f"anthropic/{SONNET}"
    columns = kubectl("get", "hd", "agent", "-n", namespace)
    assert f"anthropic/{SONNET}" in columns
    assert f"anthropic/{OPUS}" in columns
    done = eventually(
        lambda: (
            (s := status(harness)).get("phase") == "Ready"
            and s.get("stableModel") == f"anthropic/{OPUS}"
            and s
        ),
        timeout=60,
        what="the new model promoted",
    )
    assert done["stableRevision"] != before["stableRevision"]
    checked = [r.model for r in fake_api.requests() if r.endpoint == "models.retrieve"]
    assert OPUS in checked, "the new model was verified before its release"


def test_a_prompt_change_is_released(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="prompts"), data={"system": "Review carefully."}
        ),
    )
    fake_api.accept_key(GOOD_KEY)
    fake_api.set_model(SONNET, ModelBehaviour())
    put_secret(core, namespace, GOOD_KEY)
    spec = harness_spec(fake_api)
    spec["model"]["systemPromptRef"] = {"name": "prompts", "key": "system"}
    harness.create("agent", spec)
    harness.wait_ready("agent")
    before = eventually(lambda: (s := status(harness)).get("phase") == "Ready" and s)

    core.patch_namespaced_config_map(
        "prompts", namespace, {"data": {"system": "Review carefully; cite line numbers."}}
    )
    eventually(
        lambda: (
            (s := status(harness)).get("phase") == "Progressing"
            and s["canaryRevision"] != before["stableRevision"]
        ),
        what="a release of the new prompt",
    )


def test_a_refused_key_holds_the_release_at_weight_zero_until_the_secret_is_fixed(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    kubectl: Any,
    namespace: str,
    tmp_path: Path,
) -> None:
    before = deployed(harness, fake_api, core)
    assert condition(harness, "CredentialsValid")["status"] == "True"

    put_secret(core, namespace, BAD_KEY)  # a rotation to a key the provider refuses
    held = harness.wait_for_condition("agent", "CredentialsValid", "False", timeout=30)
    assert held["reason"] == "InvalidCredentials"
    hd = status(harness)
    assert (hd["phase"], hd["stage"]) == ("Progressing", "Preflight")
    harness.wait_for_event("agent", "InvalidCredentials")
    # Held: several resyncs later, still no canary pods and no traffic; stable untouched.
    for _ in range(3):
        operator_log_and_resync(operator)
        assert canary_weight(custom, namespace, "agent") == 0
        assert apps.read_namespaced_deployment("agent-canary", namespace).spec.replicas == 0
        assert status(harness)["stableRevision"] == before["stableRevision"]
    assert any(r.credential == BAD_KEY for r in fake_api.requests()), "the bad key was checked"

    fake_api.accept_key(NEW_KEY)
    put_secret(core, namespace, NEW_KEY)  # the fix: preflight runs again at once
    harness.wait_for_condition("agent", "CredentialsValid", "True", timeout=30)
    eventually(
        lambda: (
            (s := status(harness)).get("phase") == "Ready"
            and s["stableRevision"] != before["stableRevision"]
        ),
        timeout=60,
        what="the fixed revision promoted",
    )
    assert_key_never_written((BAD_KEY, NEW_KEY, GOOD_KEY), harness, operator, kubectl, namespace)


def operator_log_and_resync(operator: OperatorProcess) -> None:
    """Wait one operator resync (its own reconcile counter moves)."""
    count = operator.metric("harness_operator_reconcile_duration_seconds_count")
    eventually(
        lambda: operator.metric("harness_operator_reconcile_duration_seconds_count") > count,
        timeout=10,
        what="a reconcile pass",
    )


def assert_key_never_written(
    keys: tuple[str, ...],
    harness: Harnesses,
    operator: OperatorProcess,
    kubectl: Any,
    namespace: str,
) -> None:
    """The keys appear in no log line, Event, status or metric; nor base64-encoded."""
    places = {
        "operator log": operator.log_path.read_text(errors="replace"),
        "events": json.dumps(harness.events("agent")),
        "all events": kubectl("get", "events", "-n", namespace, "-o", "json"),
        "status": json.dumps(harness.get("agent").get("status")),
        "metrics": _metrics_text(operator),
    }
    for key in keys:
        encoded = base64.b64encode(key.encode()).decode()
        for where, text in places.items():
            assert key not in text, f"the key is in the {where}"
            assert encoded not in text, f"the base64 key is in the {where}"


def _metrics_text(operator: OperatorProcess) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics") as resp:
        return str(resp.read().decode())


@pytest.mark.parametrize("status_code", [429, 529])
def test_provider_trouble_during_preflight_neither_passes_nor_fails_it(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    status_code: int,
) -> None:
    deployed(harness, fake_api, core)
    fake_api.accept_key(NEW_KEY)
    fake_api.inject(Fault(status=status_code, count=2, path_prefix="/v1/models", retry_after=1))
    put_secret(core, namespace, NEW_KEY)

    reason = {429: "RateLimited", 529: "Overloaded"}[status_code]
    unknown = eventually(
        lambda: (c := condition(harness, "CredentialsValid")).get("reason") == reason and c,
        timeout=30,
        what=f"CredentialsValid reason {reason}",
    )
    assert unknown["status"] == "Unknown"
    statuses: list[str] = []

    def passed() -> bool:
        cond = condition(harness, "CredentialsValid")
        statuses.append(cond.get("status", "?"))
        assert canary_weight(custom, namespace, "agent") == 0 or cond.get("status") == "True"
        return cond.get("status") == "True"

    eventually(passed, timeout=30, interval=0.2, what="the retried check to pass")
    assert "False" not in statuses, "provider trouble failed the check"
    retrieves = [r for r in fake_api.requests() if r.credential == NEW_KEY]
    assert [r.status for r in retrieves][:3] == [status_code, status_code, 200]


def test_a_first_deploy_with_a_refused_key_is_not_ready(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    core: client.CoreV1Api,
) -> None:
    fake_api.set_model(SONNET, ModelBehaviour())
    put_secret(core, harness.namespace, BAD_KEY)
    harness.create("agent", harness_spec(fake_api))
    refused = harness.wait_for_condition("agent", "CredentialsValid", "False", timeout=30)
    assert refused["reason"] == "InvalidCredentials"
    operator_log_and_resync(operator)
    ready = condition(harness, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "CredentialsNotVerified")
    assert status(harness)["phase"] == "Initializing"

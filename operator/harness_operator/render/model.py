"""What `spec.model` puts into the pods: the environment the anthropic SDK and Claude Code
read for the provider, the credential (a Secret key as a variable, or a mounted key file),
the system prompt file, and the workload-identity ServiceAccount.

Variable names come from `harness_operator.api.model` (one table, also used to reject
colliding `spec.env` entries); docs/models.md lists them per provider.
"""

from __future__ import annotations

from typing import Any, Final

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.budget import StopAction
from harness_operator.api.model import (
    BASE_URL_ENV,
    CREDENTIAL_ENV,
    ENV_KILL_SWITCH,
    ENV_METRICS_PORT,
    ENV_MODEL,
    ENV_PORT,
    ENV_PROMPT_FILE,
    ENV_PROVIDER,
    PROJECT_ENV,
    PROVIDER_SWITCHES,
    REGION_ENV,
    RESOURCE_ENV,
    ModelSpec,
    Provider,
)
from harness_operator.api.spec import (
    CONTROLS_VOLUME,
    MODEL_CREDENTIALS_VOLUME,
    RESERVED_MOUNT_PREFIX,
    SYSTEM_PROMPT_VOLUME,
)
from harness_operator.naming import common_labels, controls_name
from harness_operator.render.meta import object_meta
from harness_operator.render.state import HarnessRef, K8sObject, ReleaseState

CONTROLS_DIR: Final = RESERVED_MOUNT_PREFIX + "controls"
"""The operator's flags for the harness (`<name>-controls` ConfigMap): `stop` is the budget
kill switch."""
KILL_SWITCH_FILE: Final = CONTROLS_DIR + "/stop"
CREDENTIALS_DIR: Final = RESERVED_MOUNT_PREFIX + "model"
CREDENTIALS_FILE: Final = "credentials.json"
PROMPT_DIR: Final = RESERVED_MOUNT_PREFIX + "prompt"
PROMPT_FILE: Final = "system-prompt.txt"
FILE_CREDENTIAL: Final = frozenset({Provider.VERTEX})
"""Providers whose Secret holds a key file (mounted) rather than a token (a variable)."""


def model_env(spec: HarnessDeploymentSpec) -> list[dict[str, Any]]:
    """Environment variables for `spec.model`, in a fixed order (none without a model)."""
    model = spec.model
    if model is None:
        return []
    env = [
        _value(ENV_PROVIDER, str(model.provider)),
        _value(ENV_MODEL, model.name),
        # The reference harness (and any harness following its conventions) listens where
        # the probes, Services and scrape annotations point.
        _value(ENV_PORT, str(spec.port)),
        _value(ENV_METRICS_PORT, str(spec.metrics_port)),
    ]
    if model.provider in PROVIDER_SWITCHES:
        env.append(_value(PROVIDER_SWITCHES[model.provider], "1"))
    if model.region is not None:
        env.append(_value(REGION_ENV[model.provider], model.region))
    if model.project_id is not None:
        env.append(_value(PROJECT_ENV, model.project_id))
    if model.resource is not None:
        env.append(_value(RESOURCE_ENV, model.resource))
    if model.base_url is not None:
        env.append(_value(BASE_URL_ENV[model.provider], model.base_url))
    env += _credential_env(model)
    if model.system_prompt_ref is not None:
        env.append(_value(ENV_PROMPT_FILE, f"{PROMPT_DIR}/{PROMPT_FILE}"))
    env.append(_value(ENV_KILL_SWITCH, KILL_SWITCH_FILE))
    return env


def _credential_env(model: ModelSpec) -> list[dict[str, Any]]:
    ref = model.secret_ref
    if ref is None:
        return []
    name = CREDENTIAL_ENV[model.provider]
    if model.provider in FILE_CREDENTIAL:
        return [_value(name, f"{CREDENTIALS_DIR}/{CREDENTIALS_FILE}")]
    return [{"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}]


def _value(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def model_volumes(spec: HarnessDeploymentSpec, owner: str) -> list[dict[str, Any]]:
    """Pod volumes for the operator's controls (always, so a budget edit never changes the
    pod template), a key-file credential and the system prompt. `owner` names the
    HarnessDeployment."""
    model = spec.model
    if model is None:
        return []
    volumes: list[dict[str, Any]] = [
        {
            "name": CONTROLS_VOLUME,
            # Optional: pods start before the operator's first write of it, and its updates
            # reach the running pods without a restart (a mounted ConfigMap is refreshed).
            "configMap": {"name": controls_name(owner), "optional": True},
        }
    ]
    ref = model.secret_ref
    if ref is not None and model.provider in FILE_CREDENTIAL:
        volumes.append(
            {
                "name": MODEL_CREDENTIALS_VOLUME,
                "secret": {
                    "secretName": ref.name,
                    "items": [{"key": ref.key, "path": CREDENTIALS_FILE}],
                },
            }
        )
    prompt = model.system_prompt_ref
    if prompt is not None:
        volumes.append(
            {
                "name": SYSTEM_PROMPT_VOLUME,
                "configMap": {
                    "name": prompt.name,
                    "items": [{"key": prompt.key, "path": PROMPT_FILE}],
                },
            }
        )
    return volumes


def model_mounts(spec: HarnessDeploymentSpec) -> list[dict[str, Any]]:
    """Read-only mounts of `model_volumes`."""
    mounts = {
        CONTROLS_VOLUME: CONTROLS_DIR,
        MODEL_CREDENTIALS_VOLUME: CREDENTIALS_DIR,
        SYSTEM_PROMPT_VOLUME: PROMPT_DIR,
    }
    return [
        {"name": v["name"], "mountPath": mounts[v["name"]], "readOnly": True}
        for v in model_volumes(spec, "")
    ]


def render_controls(
    hd: HarnessRef, spec: HarnessDeploymentSpec, state: ReleaseState
) -> list[K8sObject]:
    """The `<name>-controls` ConfigMap a harness reads (nothing without `spec.model`)."""
    if spec.model is None:
        return []
    stop = state.stop_spending is StopAction.KILL_SWITCH
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": object_meta(hd, controls_name(hd.name), common_labels(hd.name)),
            "data": {"stop": "true" if stop else "false"},
        }
    ]


def service_account(spec: HarnessDeploymentSpec) -> str | None:
    """The pods' ServiceAccount: the workload identity's, else `podTemplate`'s."""
    identity = spec.model.service_account_name if spec.model else None
    return identity or spec.pod_template.service_account_name

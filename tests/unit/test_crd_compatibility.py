"""The CRD can be upgraded ahead of the operator (a Helm upgrade's rollout; `helm rollback`,
which keeps the newer CRD): fields added since operator 0.1 carry no schema default, because
the apiserver would write the default into every stored object and 0.1, which forbids
fields it does not know, would then reject them all. Defaults inside objects 0.1 never had
are fine: a HarnessDeployment that uses such an object is new work 0.1 cannot do anyway."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness_operator.api.schema import openapi_schema, template_openapi_schema

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_0_1 = "be23226"  # tests/integration/test_upgrade.py runs this operator for real


def schema_at(commit: str, path: str) -> dict[str, Any]:
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    schema: dict[str, Any] = yaml.safe_load(text)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    return schema


def paths(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from paths(sub, f"{path}.{key}")
    if "items" in schema:
        yield from paths(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from paths(schema["additionalProperties"], f"{path}{{}}")


def defaults_an_old_operator_would_reject(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    known = dict(paths(old))
    return [
        path
        for path, node in paths(new)
        if "default" in node and path not in known and path.rsplit(".", 1)[0] in known
    ]


@pytest.mark.parametrize(
    ("current", "crd"),
    [
        (openapi_schema, "crds/harnessdeployments.harness.dev.yaml"),
        (template_openapi_schema, "crds/harnessanalysistemplates.harness.dev.yaml"),
    ],
)
def test_fields_added_since_0_1_have_no_schema_default(current: Any, crd: str) -> None:
    assert defaults_an_old_operator_would_reject(current(), schema_at(OPERATOR_0_1, crd)) == []


def test_the_check_sees_a_defaulted_new_field() -> None:
    old = {"properties": {"spec": {"properties": {"image": {"type": "string"}}}}}
    new = {
        "properties": {
            "spec": {
                "properties": {
                    "image": {"type": "string", "default": "a"},
                    "shape": {"type": "string", "default": "service"},
                    "model": {"properties": {"provider": {"default": "anthropic"}}},
                }
            }
        }
    }
    assert defaults_an_old_operator_would_reject(new, old) == [".spec.shape"]


def test_an_operator_default_is_still_the_models_default_and_documented() -> None:
    from harness_operator.api import HarnessDeploymentSpec
    from harness_operator.api.shape import Shape

    spec = HarnessDeploymentSpec.model_validate({"image": "ghcr.io/acme/agent:1.0"})
    assert spec.shape is Shape.SERVICE
    shape = openapi_schema()["properties"]["spec"]["properties"]["shape"]
    assert "default" not in shape
    assert shape["description"].endswith('Default: `"service"`.')

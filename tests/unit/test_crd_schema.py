"""The generated CRD: structural, bounded, documented, and consistent with the models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import yaml
from pydantic import Field

from harness_operator.api import HarnessDeployment, HarnessDeploymentSpec
from harness_operator.api.schema import SchemaError, crd, openapi_schema, structural_schema
from harness_operator.api.types import ApiModel, FreeForm
from unit.schema_checks import apply_defaults, structural_problems, validate, walk

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def harness_deployments(path: Path) -> list[dict[str, Any]]:
    """The HarnessDeployments of an example file (templates are checked elsewhere)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in docs if d.get("kind") == "HarnessDeployment"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return openapi_schema()


@pytest.fixture(scope="module")
def spec_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return dict(schema["properties"]["spec"])


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    assert structural_problems(schema) == []


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}, "forbidden keyword $ref"),
        ({"type": "string", "const": "x"}, "forbidden keyword const"),
        ({"type": "integer", "exclusiveMinimum": 0}, "numeric exclusiveMinimum"),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "anyOf with null"),
        (
            {"type": "object", "properties": {}, "additionalProperties": False},
            "additionalProperties next to properties",
        ),
        ({"type": "object", "properties": {"a": {"description": "untyped"}}}, ".a: no type"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
        ({"type": "string", "title": "T"}, "forbidden keyword title"),
    ],
)
def test_linter_catches_non_structural_schemas(bad: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in structural_problems(bad))


def test_every_field_is_described(schema: dict[str, Any]) -> None:
    missing = [
        path
        for path, node in walk(schema)
        if path.startswith((".spec", ".status"))
        and not path.endswith(("[]", "{}"))
        and not node.get("description")
    ]
    assert missing == []


def test_spec_strings_lists_and_maps_are_bounded(spec_schema: dict[str, Any]) -> None:
    """CEL cost estimates need bounds; unbounded ones fail CRD creation on 1.34."""
    unbounded = []
    for path, node in walk(spec_schema, ".spec"):
        kind = node.get("type")
        if kind == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(path)
        if kind == "array" and "maxItems" not in node:
            unbounded.append(path)
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(path)
    assert unbounded == []


def test_defaults_validate_against_their_own_schema(schema: dict[str, Any]) -> None:
    defaults = [(p, n) for p, n in walk(schema) if "default" in n]
    assert len(defaults) > 10
    for path, node in defaults:
        assert validate(node["default"], node, path) == [], path


def test_cel_rules_name_existing_fields(schema: dict[str, Any]) -> None:
    """A typo in `self.<field>` or `fieldPath` only shows on a real apiserver; catch it here."""
    rules = 0
    for path, node in walk(schema):
        for rule in node.get("x-kubernetes-validations", []):
            rules += 1
            if "properties" in node:
                for field in re.findall(r"self\.([A-Za-z_]\w*)\b(?!\()", rule["rule"]):
                    assert field in node["properties"], f"{path}: {rule['rule']}"
            if "fieldPath" in rule:
                assert rule["fieldPath"].lstrip(".") in node["properties"], path
    assert rules >= 14


def test_cel_messages_name_their_field(schema: dict[str, Any]) -> None:
    spec_rules = [
        r
        for path, node in walk(schema)
        if path.startswith(".spec")
        for r in node.get("x-kubernetes-validations", [])
    ]
    generic = "must be a non-negative count or a percentage such as 25%"  # on int-or-string
    for rule in spec_rules:
        if rule["message"] != generic:
            assert re.search(r"[a-z][A-Za-z]+(\[\])?[.:\s]", rule["message"]), rule["message"]


def test_expected_cel_rules_are_present(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]
    props = spec["properties"]

    def rules(node: dict[str, Any]) -> str:
        return " ".join(r["rule"] for r in node.get("x-kubernetes-validations", []))

    assert "preStopDelaySeconds < self.terminationGracePeriodSeconds" in rules(spec)
    assert "self.minReplicas <= self.maxReplicas" in rules(props["autoscaling"])
    assert "isSorted()" in rules(props["rollout"]["properties"]["steps"])
    assert "has(self.steps) && (has(self.stepWeight)" in rules(props["rollout"])
    assert "duration(self) >= duration('1s')" in rules(props["rollout"]["properties"]["interval"])
    assert "x-kubernetes-validations" not in schema, "names are checked by the operator"


def test_list_maps_and_sets(spec_schema: dict[str, Any]) -> None:
    props = spec_schema["properties"]
    assert props["env"]["x-kubernetes-list-type"] == "map"
    assert props["env"]["x-kubernetes-list-map-keys"] == ["name"]
    template = props["podTemplate"]["properties"]
    assert template["volumes"]["x-kubernetes-list-map-keys"] == ["name"]
    assert template["volumeMounts"]["x-kubernetes-list-map-keys"] == ["mountPath"]
    assert props["service"]["properties"]["hosts"]["x-kubernetes-list-type"] == "set"


def test_quantities_and_percentages_are_int_or_string(spec_schema: dict[str, Any]) -> None:
    quantity = spec_schema["properties"]["resources"]["properties"]["requests"][
        "additionalProperties"
    ]
    assert quantity["x-kubernetes-int-or-string"] is True
    assert "pattern" in quantity
    budget = spec_schema["properties"]["disruptionBudget"]["properties"]["maxUnavailable"]
    assert budget["x-kubernetes-int-or-string"] is True
    assert budget["default"] == 1


def test_free_form_fields_preserve_unknown(spec_schema: dict[str, Any]) -> None:
    template = spec_schema["properties"]["podTemplate"]["properties"]
    assert template["affinity"]["x-kubernetes-preserve-unknown-fields"] is True
    assert template["tolerations"]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    volume = template["volumes"]["items"]
    assert volume["x-kubernetes-preserve-unknown-fields"] is True
    assert volume["required"] == ["name"]
    value_from = spec_schema["properties"]["env"]["items"]["properties"]["valueFrom"]
    assert set(value_from["properties"]) == {"secretKeyRef", "configMapKeyRef"}
    assert value_from["x-kubernetes-preserve-unknown-fields"] is True


def test_crd_names_scope_and_columns() -> None:
    manifest = crd()
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == "harnessdeployments.harness.dev"
    assert spec["names"] == {
        "kind": "HarnessDeployment",
        "listKind": "HarnessDeploymentList",
        "plural": "harnessdeployments",
        "singular": "harnessdeployment",
        "shortNames": ["hd"],
        "categories": ["harness"],
    }
    assert spec["scope"] == "Namespaced"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "Phase",
        "Weight",
        "Stable",
        "Canary",
        "Model",
        "Canary-Model",
        "Ready",
        "Age",
        "Image",
    ]
    assert columns["Weight"]["jsonPath"] == ".status.canaryWeight"
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Image"]["priority"] == 1


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_the_schema(path: Path, schema: dict[str, Any]) -> None:
    for doc in harness_deployments(path):
        assert validate(doc, schema) == []
        assert validate(apply_defaults(doc, schema), schema) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_schema_defaults_agree_with_model_defaults(path: Path, schema: dict[str, Any]) -> None:
    """What the apiserver stores (schema defaults applied) parses to the same spec as the
    file itself (model defaults applied)."""
    for doc in harness_deployments(path):
        stored = apply_defaults(doc, schema)
        assert (
            HarnessDeployment.model_validate(stored).spec
            == HarnessDeployment.model_validate(doc).spec
        )


def test_schema_defaults_agree_for_every_optional_section(schema: dict[str, Any]) -> None:
    spec_schema = schema["properties"]["spec"]
    raw = {
        "image": "example.com/h:1",
        "autoscaling": {"maxReplicas": 3},
        "metrics": {},
        "probes": {"liveness": {}, "readiness": {}, "startup": {}},
        "service": {},
        "disruptionBudget": {},
        "podTemplate": {},
        "rollout": {"steps": [{"weight": 10}]},
    }
    stored = apply_defaults(raw, spec_schema)
    assert HarnessDeploymentSpec.model_validate(stored) == HarnessDeploymentSpec.model_validate(raw)


# --- the converter ------------------------------------------------------------------------


class _Inner(ApiModel):
    """Inner docstring."""

    size: int | None = None
    """Size."""


class _Outer(ApiModel):
    """Outer."""

    inner: _Inner | None = None
    """Field description wins."""
    count: int = 3
    """Count."""


def test_converter_inlines_refs_and_folds_optional() -> None:
    converted = structural_schema(_Outer)
    inner = converted["properties"]["inner"]
    assert inner["type"] == "object"
    assert inner["description"] == "Field description wins."
    assert inner["properties"]["size"] == {"type": "integer", "description": "Size."}
    assert converted["properties"]["count"]["default"] == 3
    assert structural_problems(converted) == []


class _Edge(ApiModel):
    """Edge cases."""

    kind: Literal["only"] = "only"
    """Const."""
    ratio: Annotated[int, Field(gt=0)] = 1
    """Exclusive bound."""
    blob: FreeForm | None = None
    """Free-form."""


def test_converter_fixes_const_exclusive_bounds_and_free_form() -> None:
    props = structural_schema(_Edge)["properties"]
    assert props["kind"]["enum"] == ["only"]
    assert "const" not in props["kind"]
    assert (props["ratio"]["minimum"], props["ratio"]["exclusiveMinimum"]) == (0, True)
    assert props["blob"] == {
        "type": "object",
        "description": "Free-form.",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_converter_rejects_unions() -> None:
    class Union(ApiModel):
        value: int | str
        """Either."""

    with pytest.raises(SchemaError, match="unions are not structural"):
        structural_schema(Union)

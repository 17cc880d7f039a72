"""The CRDs, derived from the pydantic models: a small converter from pydantic's JSON Schema
to a Kubernetes *structural* OpenAPI v3 schema, and the CustomResourceDefinitions around it
(HarnessDeployment and HarnessAnalysisTemplate).

Structural rules enforced here (kopf-notes §11; apiextensions' validation.go): no
`$ref`/`$defs`, no `anyOf` with `null` (optional fields are simply omitted), no `const`,
boolean `exclusiveMinimum`/`exclusiveMaximum`, no `additionalProperties` next to
`properties`, no titles, and a `type` on every node except int-or-string and
preserve-unknown ones. Anything the converter does not understand raises, so a model change
that would produce a schema the apiserver rejects fails in unit tests, not on a cluster.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from harness_operator import GROUP
from harness_operator.api.analysis import HarnessAnalysisTemplateSpec
from harness_operator.api.resource import (
    CATEGORIES,
    CRD_NAME,
    KIND,
    LIST_KIND,
    PLURAL,
    PRINTER_COLUMNS,
    SHORT_NAMES,
    SINGULAR,
    TEMPLATE_CRD_NAME,
    TEMPLATE_KIND,
    TEMPLATE_LIST_KIND,
    TEMPLATE_PLURAL,
    TEMPLATE_PRINTER_COLUMNS,
    TEMPLATE_SHORT_NAMES,
    TEMPLATE_SINGULAR,
    VERSION,
)
from harness_operator.api.spec import HarnessDeploymentSpec
from harness_operator.api.status import HarnessDeploymentStatus
from harness_operator.api.types import OPERATOR_DEFAULT_KEY

Schema = dict[str, Any]

# Keys pydantic emits that carry no meaning for Kubernetes.
_DROPPED = frozenset({"title"})
# Keywords copied as they are (the structural ones are handled one by one in `_convert`).
_PASSTHROUGH = frozenset(
    {
        "type",
        "description",
        "default",
        "enum",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "nullable",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
        "x-kubernetes-embedded-resource",
    }
)
_INT_OR_STRING_BRANCHES = [{"type": "integer"}, {"type": "string"}]


class SchemaError(ValueError):
    """The pydantic schema contains something a structural CRD schema cannot express."""


def structural_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of a model (serialized by alias)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs, path="")


def _convert(node: Schema, defs: Schema, path: str) -> Schema:
    node = _resolve(node, defs, path)
    out: Schema = {}
    operator_default = node.get(OPERATOR_DEFAULT_KEY, False)
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and (value is None or operator_default)):
            continue
        if key == OPERATOR_DEFAULT_KEY:
            continue
        if key == "properties":
            out[key] = {k: _convert(v, defs, f"{path}.{k}") for k, v in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if isinstance(value, dict) and value:
                out[key] = _convert(value, defs, f"{path}{{}}")
            elif value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            # `False` (extra="forbid"): unknown fields are pruned by the apiserver anyway.
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if isinstance(value, bool):
                out[key] = value
            else:
                out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
                out[key] = True
        elif key == "anyOf" and node.get("x-kubernetes-int-or-string"):
            if value != _INT_OR_STRING_BRANCHES:
                raise SchemaError(f"{path or '<root>'}: unexpected int-or-string branches {value}")
            out[key] = value
        elif key == "description":
            out[key] = clean_description(value)
        elif key in _PASSTHROUGH:
            out[key] = value
        else:
            raise SchemaError(f"{path or '<root>'}: unsupported JSON Schema keyword {key!r}")
    if operator_default and node.get("default") is not None:
        # Not a schema default (see OPERATOR_DEFAULT), but users still read it here and in
        # `kubectl explain`.
        value = json.dumps(node["default"])
        out["description"] = f"{out.get('description', '')} Default: `{value}`.".lstrip()
    if "properties" in out and out.get("type") is None:
        out["type"] = "object"
    if "properties" in out and isinstance(out.get("additionalProperties"), dict):
        raise SchemaError(f"{path or '<root>'}: additionalProperties next to properties")
    return out


def clean_description(text: str) -> str:
    """A docstring as a one-line description (`kubectl explain` re-wraps it anyway)."""
    return " ".join(text.split())


def _resolve(node: Schema, defs: Schema, path: str) -> Schema:
    """Inline `$ref`s and fold `anyOf: [T, null]` into `T`; the outer node's keys
    (description, default, extensions) win over the referenced ones."""
    while True:
        if "$ref" in node:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            name = node["$ref"].removeprefix("#/$defs/")
            if name not in defs:
                raise SchemaError(f"{path or '<root>'}: unresolved $ref {node['$ref']}")
            node = {**defs[name], **siblings}
        elif "allOf" in node and len(node["allOf"]) == 1:
            siblings = {k: v for k, v in node.items() if k != "allOf"}
            node = {**node["allOf"][0], **siblings}
        elif "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            branches = [b for b in node["anyOf"] if b != {"type": "null"}]
            if len(branches) != 1:
                raise SchemaError(f"{path or '<root>'}: unions are not structural: {node['anyOf']}")
            siblings = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**branches[0], **siblings}
        else:
            return node


# --- the CRDs --------------------------------------------------------------------------


def _described(model: type[BaseModel]) -> Schema:
    schema = structural_schema(model)
    schema["description"] = clean_description(model.__doc__ or "")
    return schema


def _root_schema(kind: str, description: str, spec: Schema, status: Schema | None) -> Schema:
    properties: Schema = {
        "apiVersion": {
            "type": "string",
            "description": f"Versioned schema of this object; {GROUP}/{VERSION}.",
        },
        "kind": {"type": "string", "description": f"Kind of this object; {kind}."},
        "metadata": {"type": "object"},
        "spec": spec,
    }
    if status is not None:
        properties["status"] = status
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": ["spec"],
    }


def openapi_schema() -> Schema:
    """`openAPIV3Schema` of the HarnessDeployment CRD."""
    # No rule on metadata.name: a name too long for the generated Services is reported by
    # the operator as a Degraded condition (reason InvalidName) with an Event.
    return _root_schema(
        KIND,
        "A HarnessDeployment runs an AI-agent harness (a container serving HTTP) and"
        " releases new revisions of it as metric-gated canaries.",
        _described(HarnessDeploymentSpec),
        _described(HarnessDeploymentStatus),
    )


def template_openapi_schema() -> Schema:
    """`openAPIV3Schema` of the HarnessAnalysisTemplate CRD."""
    return _root_schema(
        TEMPLATE_KIND,
        "A HarnessAnalysisTemplate holds metric checks that HarnessDeployments in the same"
        " namespace include by name (`spec.analysis.templates`).",
        _described(HarnessAnalysisTemplateSpec),
        None,
    )


def _crd(
    *,
    name: str,
    names: dict[str, Any],
    columns: tuple[dict[str, Any], ...],
    schema: Schema,
    status: bool,
) -> dict[str, Any]:
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if status:
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = [dict(c) for c in columns]
    version["schema"] = {"openAPIV3Schema": schema}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/part-of": "harness-operator"},
        },
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition manifest of HarnessDeployment."""
    return _crd(
        name=CRD_NAME,
        names={
            "kind": KIND,
            "listKind": LIST_KIND,
            "plural": PLURAL,
            "singular": SINGULAR,
            "shortNames": list(SHORT_NAMES),
            "categories": list(CATEGORIES),
        },
        columns=PRINTER_COLUMNS,
        schema=openapi_schema(),
        status=True,
    )


def template_crd() -> dict[str, Any]:
    """The CustomResourceDefinition manifest of HarnessAnalysisTemplate (no status)."""
    return _crd(
        name=TEMPLATE_CRD_NAME,
        names={
            "kind": TEMPLATE_KIND,
            "listKind": TEMPLATE_LIST_KIND,
            "plural": TEMPLATE_PLURAL,
            "singular": TEMPLATE_SINGULAR,
            "shortNames": list(TEMPLATE_SHORT_NAMES),
            "categories": list(CATEGORIES),
        },
        columns=TEMPLATE_PRINTER_COLUMNS,
        schema=template_openapi_schema(),
        status=False,
    )


def crds() -> list[dict[str, Any]]:
    """Every CRD the operator serves, HarnessDeployment first."""
    return [crd(), template_crd()]

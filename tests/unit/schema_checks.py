"""Test helpers for CRD schemas: a structural-schema linter, a small OpenAPI v3 validator
and the apiserver's defaulting, enough to check our own schema offline. Not a general
implementation: it covers the keywords `harness_operator.api.schema` emits."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

Schema = dict[str, Any]

FORBIDDEN = (
    "$ref",
    "$defs",
    "definitions",
    "const",
    "prefixItems",
    "discriminator",
    "uniqueItems",
    "title",
    "oneOf",
    "allOf",
    "not",
)
INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]
BRANCH_FORBIDDEN = ("type", "description", "default", "additionalProperties", "nullable")


def walk(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its path (`.a.b`, `[]` for items, `{}` for map values)."""
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from walk(prop, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def structural_problems(schema: Schema) -> list[str]:
    """Why a schema is not structural (empty when it is)."""
    problems = []
    for path, node in walk(schema):
        where = path or "<root>"
        problems += [f"{where}: forbidden keyword {k}" for k in FORBIDDEN if k in node]
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            if key in node and not isinstance(node[key], bool):
                problems.append(f"{where}: numeric {key}")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: additionalProperties next to properties")
        if "anyOf" in node:
            if not node.get("x-kubernetes-int-or-string") or node["anyOf"] != INT_OR_STRING_ANYOF:
                problems.append(f"{where}: anyOf outside the int-or-string form")
            for branch in node["anyOf"]:
                if branch == {"type": "null"}:
                    problems.append(f"{where}: anyOf with null")
                extra = set(branch) & set(BRANCH_FORBIDDEN) - {"type"}
                if extra:
                    problems.append(f"{where}: anyOf branch sets {sorted(extra)}")
        untyped_ok = node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        if "type" not in node and not untyped_ok:
            problems.append(f"{where}: no type")
        if node.get("x-kubernetes-int-or-string") and "type" in node:
            problems.append(f"{where}: int-or-string with a type")
        if not isinstance(node.get("type", ""), str):
            problems.append(f"{where}: type is not a single string")
        if node.get("x-kubernetes-list-type") == "map":
            items = node.get("items", {})
            for key in node.get("x-kubernetes-list-map-keys", []):
                if key not in items.get("required", []) and "default" not in items.get(
                    "properties", {}
                ).get(key, {}):
                    problems.append(
                        f"{where}: list-map key {key} is neither required nor defaulted"
                    )
        for rule in node.get("x-kubernetes-validations", []):
            if not rule.get("message") or "\n" in rule["message"] or "\n" in rule["rule"]:
                problems.append(f"{where}: rule {rule['rule']!r} needs a one-line message")
    return problems


# --- validation -------------------------------------------------------------------------


def validate(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Errors of `value` against `schema` (OpenAPI v3 as the apiserver reads it). Unknown
    fields are errors here (the apiserver would silently prune them)."""
    where = path or "<root>"
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{where}: expected int or string, got {value!r}"]
        return _string_checks(value, schema, where) if isinstance(value, str) else []
    kind = schema.get("type")
    if kind is None and schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    check = _CHECKS.get(str(kind))
    if check is None:
        return [f"{where}: schema without a known type"]
    return check(value, schema, path)


def _object(value: Any, schema: Schema, path: str) -> list[str]:
    where = path or "<root>"
    if not isinstance(value, dict):
        return [f"{where}: expected object, got {value!r}"]
    errors = [
        f"{where}: missing required {k}" for k in schema.get("required", []) if k not in value
    ]
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if key in props:
            errors += validate(item, props[key], f"{path}.{key}")
        elif isinstance(extra, dict):
            errors += validate(item, extra, f"{path}.{key}")
        elif not schema.get("x-kubernetes-preserve-unknown-fields") and props:
            errors.append(f"{where}: unknown field {key}")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(f"{where}: more than {schema['maxProperties']} properties")
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(f"{where}: fewer than {schema['minProperties']} properties")
    return errors


def _array(value: Any, schema: Schema, path: str) -> list[str]:
    where = path or "<root>"
    if not isinstance(value, list):
        return [f"{where}: expected array, got {value!r}"]
    errors = []
    for i, item in enumerate(value):
        errors += validate(item, schema["items"], f"{path}[{i}]")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{where}: more than {schema['maxItems']} items")
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{where}: fewer than {schema['minItems']} items")
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set" and len({repr(v) for v in value}) != len(value):
        errors.append(f"{where}: duplicate items in a set")
    if list_type == "map":
        keys = [tuple(item.get(k) for k in schema["x-kubernetes-list-map-keys"]) for item in value]
        if len(set(keys)) != len(keys):
            errors.append(f"{where}: duplicate map keys")
    return errors


def _string(value: Any, schema: Schema, path: str) -> list[str]:
    where = path or "<root>"
    if not isinstance(value, str):
        return [f"{where}: expected string, got {value!r}"]
    errors = _string_checks(value, schema, where)
    if schema.get("format") == "date-time":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            errors.append(f"{where}: not a date-time")
    return errors


def _string_checks(value: str, schema: Schema, where: str) -> list[str]:
    errors = []
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{where}: longer than {schema['maxLength']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{where}: shorter than {schema['minLength']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: does not match {schema['pattern']}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: not one of {schema['enum']}")
    return errors


def _numeric(kinds: type | tuple[type, ...], name: str) -> Callable[[Any, Schema, str], list[str]]:
    """Checker for `integer` (kinds=int) or `number` (int or float); bools are neither."""

    def check(value: Any, schema: Schema, path: str) -> list[str]:
        where = path or "<root>"
        if isinstance(value, bool) or not isinstance(value, kinds):
            return [f"{where}: expected {name}, got {value!r}"]
        errors = []
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: above {schema['maximum']}")
        return errors

    return check


_integer = _numeric(int, "integer")
_number = _numeric((int, float), "number")


def _boolean(value: Any, schema: Schema, path: str) -> list[str]:
    return [] if isinstance(value, bool) else [f"{path or '<root>'}: expected boolean"]


_CHECKS = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
}


def apply_defaults(value: Any, schema: Schema) -> Any:
    """What the apiserver stores: defaults filled in for absent properties, recursively
    (also inside defaults it just filled in)."""
    value = copy.deepcopy(value)
    _default_in_place(value, schema)
    return value


def _default_in_place(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        for key, prop in schema.get("properties", {}).items():
            if key not in value and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
        for key, item in value.items():
            prop = schema.get("properties", {}).get(key)
            if prop is None and isinstance(schema.get("additionalProperties"), dict):
                prop = schema["additionalProperties"]
            if prop is not None:
                _default_in_place(item, prop)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_in_place(item, schema["items"])

"""Hypothesis strategies for HarnessDeployment specs, read from the generated CRD schema.

`schema_values(node)` draws values that follow a structural schema node (types, enums,
patterns, bounds, list and map sizes; CEL rules are not modelled, so many drawn specs break
one — which is what admission is for). With `hostile=True` any node may instead get a value
picked to hurt: a wrong type, a number at or past int32/int64, an empty, huge, non-BMP,
bidirectional or control-character string, or a free-form value nested deep.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "harnessdeployments.harness.dev.yaml"

HOSTILE_STRINGS = (
    "",
    " ",
    "😀" * 3,
    "\u202eevil\u202c",
    "a\u200bb",
    "line\nbreak",
    "\u0085nel",
    "x" * 300,
    "../..",
    "${HOME}",
    "null",
)
HOSTILE_NUMBERS = (0, -1, 2**31 - 1, 2**31, 2**63 - 1, -(2**63), 1e300, 0.5)


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]  # type: ignore[no-any-return]


def _deep(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


FREE_FORM = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _hostile() -> st.SearchStrategy[Any]:
    return (
        st.sampled_from(HOSTILE_STRINGS)
        | st.sampled_from(HOSTILE_NUMBERS)
        | st.just([])
        | st.just({})
        | st.booleans()
        | st.just(_deep(80))
    )


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    if "enum" in node:
        return st.sampled_from(node["enum"])
    low, high = node.get("minLength", 0), min(node.get("maxLength", 40), 40)
    pattern = node.get("pattern")
    if pattern:
        regex = re.compile(pattern)
        return st.from_regex(regex, fullmatch=True).filter(
            lambda s: low <= len(s) <= high or len(s) <= node.get("maxLength", 10**6)
        )
    return st.text(min_size=low, max_size=max(high, low))


def schema_values(
    node: dict[str, Any], hostile: bool = False, depth: int = 0
) -> st.SearchStrategy[Any]:
    """Values for one schema node (see the module doc)."""
    normal = _normal(node, hostile, depth)
    if hostile and depth > 0:
        return st.one_of(normal, normal, normal, _hostile())
    return normal


def _normal(node: dict[str, Any], hostile: bool, depth: int) -> st.SearchStrategy[Any]:
    if node.get("x-kubernetes-int-or-string"):
        return st.integers(0, 100) | st.sampled_from(["25%", "1", "0%", "100%"])
    kind = node.get("type")
    if "enum" in node and kind != "string":
        return st.sampled_from(node["enum"])
    if kind == "string":
        return _string(node)
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        low = node.get("minimum", -1000)
        high = node.get("maximum", 10**6)
        ints = st.integers(int(low), int(high))
        return ints if kind == "integer" else ints | st.floats(low, high, allow_nan=False)
    if kind == "array":
        items = schema_values(node.get("items", {}), hostile, depth + 1)
        return st.lists(
            items, min_size=node.get("minItems", 0), max_size=min(node.get("maxItems", 3), 3)
        )
    if kind == "object" or "properties" in node:
        properties = node.get("properties")
        if properties:
            required = set(node.get("required", []))
            return st.fixed_dictionaries(
                {
                    k: schema_values(v, hostile, depth + 1)
                    for k, v in properties.items()
                    if k in required
                },
                optional={
                    k: schema_values(v, hostile, depth + 1)
                    for k, v in properties.items()
                    if k not in required
                },
            )
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return st.dictionaries(
                st.from_regex(r"[a-z][a-z0-9.-]{0,12}", fullmatch=True),
                schema_values(extra, hostile, depth + 1),
                max_size=min(node.get("maxProperties", 3), 3),
            )
        return st.dictionaries(st.text(max_size=8), FREE_FORM, max_size=3)
    return FREE_FORM

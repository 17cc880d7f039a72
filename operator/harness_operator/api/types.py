"""Building blocks shared by the API models: the base model, constrained scalar types and
the helper that attaches CEL rules.

Every constraint here is written once and ends up in two places: pydantic enforces it when
the operator (or a test) parses a spec, and `schema.py` turns it into the CRD's OpenAPI
schema, which the apiserver enforces. Patterns must therefore be valid in both Rust's
`regex` crate (pydantic-core) and Go's RE2 (the apiserver): no look-arounds, no backrefs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

# --- base model ------------------------------------------------------------------------


class ApiModel(BaseModel):
    """Base of every spec model: camelCase on the wire, field docstrings as descriptions,
    unknown fields rejected (the apiserver prunes them, so they only show up in files that
    were never applied, where a typo should fail loudly)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        use_attribute_docstrings=True,
        extra="forbid",
        frozen=True,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The object as it is written to Kubernetes: camelCase keys, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OpenApiModel(ApiModel):
    """A model that keeps fields it does not declare (Kubernetes types we pass through
    without modelling every field, e.g. a Volume). Its schema node gets
    `x-kubernetes-preserve-unknown-fields: true`."""

    model_config = ConfigDict(extra="allow")


def cel(
    rule: str,
    message: str,
    field_path: str | None = None,
    *,
    message_expression: str | None = None,
) -> dict[str, str]:
    """One `x-kubernetes-validations` entry. `message` must name the field it is about,
    because that is all a user sees from `kubectl apply`. A `message_expression` (CEL
    returning a string) replaces it when it evaluates; `message` stays as the fallback."""
    entry = {"rule": rule, "message": message}
    if message_expression is not None:
        entry["messageExpression"] = message_expression
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """`json_schema_extra` value carrying CEL rules, for `Field(...)`."""
    return {"x-kubernetes-validations": list(rules)}


def model_rules(*rules: dict[str, str]) -> ConfigDict:
    """`model_config` for a model whose schema node carries CEL rules."""
    return ConfigDict(json_schema_extra=validations(*rules))


def list_map(*keys: str) -> dict[str, Any]:
    """`json_schema_extra` for a list merged by key under server-side apply."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}

OPERATOR_DEFAULT_KEY = "x-harness-operator-default"
OPERATOR_DEFAULT: dict[str, Any] = {OPERATOR_DEFAULT_KEY: True}
"""`json_schema_extra` for a field added to an object that operator 0.1 already read: its
default is applied by the operator, not written into stored objects by the apiserver. An
older operator forbids fields it does not know, so a CRD default would make it reject
every HarnessDeployment once the CRD is upgraded ahead of it (a Helm upgrade's rollout, a
`helm rollback`, which keeps the newer CRD). A test holds the CRD to this."""

# --- strings ---------------------------------------------------------------------------

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Istio VirtualService hosts: a DNS name, optionally with a leading wildcard label.
HOST_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# An Istio Gateway reference: `name` (same namespace) or `namespace/name`.
GATEWAY_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
HTTP_PATH_PATTERN = r"^/[^\s]*$"
IMAGE_PATTERN = r"^[^\s]+$"

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
Host = Annotated[str, Field(min_length=1, max_length=253, pattern=HOST_PATTERN)]
GatewayRef = Annotated[str, Field(min_length=1, max_length=253, pattern=GATEWAY_PATTERN)]
HttpPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=HTTP_PATH_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]
ShortString = Annotated[str, Field(max_length=1024)]
LongString = Annotated[str, Field(max_length=32768)]
LabelValue = Annotated[str, Field(max_length=63)]
AnnotationValue = Annotated[str, Field(max_length=8192)]

# --- durations -------------------------------------------------------------------------

# The subset of Go/CEL duration syntax we accept: "30s", "5m", "1h30m", "500ms".
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration string such as `1m30s`. Raises ValueError on anything else."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h30m")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str, Field(max_length=32, pattern=DURATION_PATTERN), AfterValidator(_check_duration)
]

# --- int-or-string ---------------------------------------------------------------------

# resource.Quantity, as controller-gen renders it for built-in types.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
PERCENT_PATTERN = r"^(100|[1-9]?[0-9])%$"
_INT_OR_STRING: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(f"invalid quantity {value!r}: use e.g. 250m, 512Mi, 2")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"invalid quantity {value!r}: must not be negative")
    return value


def _check_int_or_percent(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(PERCENT_PATTERN, value):
        raise ValueError(f"invalid value {value!r}: use a count (1) or a percentage (25%)")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"invalid value {value!r}: must not be negative")
    return value


Quantity = Annotated[
    int | str,
    WithJsonSchema({**_INT_OR_STRING, "pattern": QUANTITY_PATTERN}),
    AfterValidator(_check_quantity),
]
"""A Kubernetes resource quantity: an integer or a string such as `250m` or `512Mi`."""

IntOrPercent = Annotated[
    int | str,
    WithJsonSchema(
        {
            **_INT_OR_STRING,
            "pattern": PERCENT_PATTERN,
            "x-kubernetes-validations": [
                cel(
                    "type(self) == string || self >= 0",
                    "must be a non-negative count or a percentage such as 25%",
                )
            ],
        }
    ),
    AfterValidator(_check_int_or_percent),
]
"""A count (`1`) or a percentage (`25%`), like a Deployment's `maxUnavailable`."""

# --- free-form -------------------------------------------------------------------------

FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""A Kubernetes object passed through unchanged (e.g. `affinity`); the apiserver validates
it when the operator writes the Deployment."""

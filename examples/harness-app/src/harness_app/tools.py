"""The built-in tools: deterministic, local, no side effects.

`add` adds two numbers; `lookup` returns a canned fact. Both reject bad input with a
`ToolError`, which the agent loop returns to the model as an `is_error` tool_result. The
tool set is part of the harness's behaviour, so changing it is a new image (a canary).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Final

from anthropic.types import ToolParam


class ToolError(Exception):
    """The tool could not run with the input it was given (a message for the model)."""


FACTS: Final = {
    "harness-operator": "harness-operator deploys agent harnesses and canary-releases them on"
    " Prometheus metrics.",
    "canary": "A canary gets a small share of traffic first and is promoted only if its"
    " metrics stay within bounds.",
    "prometheus": "Prometheus scrapes the harness's /metrics endpoint.",
}


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"{name} must be a number")
    if not math.isfinite(value):
        raise ToolError(f"{name} must be finite")
    return float(value)


def add(tool_input: Mapping[str, object]) -> str:
    total = _number(tool_input.get("a"), "a") + _number(tool_input.get("b"), "b")
    return str(int(total)) if total.is_integer() else repr(total)


def lookup(tool_input: Mapping[str, object]) -> str:
    topic = tool_input.get("topic")
    if not isinstance(topic, str) or not topic.strip():
        raise ToolError("topic must be a non-empty string")
    fact = FACTS.get(topic.strip().lower())
    if fact is None:
        raise ToolError(f"no fact about {topic!r}; known topics: {', '.join(sorted(FACTS))}")
    return fact


TOOLS: Final[dict[str, Callable[[Mapping[str, object]], str]]] = {"add": add, "lookup": lookup}

TOOL_PARAMS: Final[list[ToolParam]] = [
    {
        "name": "add",
        "description": "Add two numbers and return the sum.",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
    {
        "name": "lookup",
        "description": "Look up a short fact about a topic (harness-operator, canary, prometheus).",
        "input_schema": {
            "type": "object",
            "properties": {"topic": {"type": "string"}},
            "required": ["topic"],
        },
    },
]


def run_tool(name: str, tool_input: object) -> str:
    """Run tool `name`; raises `ToolError` for an unknown tool or bad input."""
    tool = TOOLS.get(name)
    if tool is None:
        raise ToolError(f"unknown tool {name!r}")
    if not isinstance(tool_input, Mapping):
        raise ToolError("tool input must be a JSON object")
    return tool(tool_input)

"""Token prices and the cost of a model call.

Owns the built-in price table (USD per million tokens, keyed by model family), the mapping
of provider-specific model ids (Bedrock, Vertex) onto those families, and the
`HARNESS_PRICING` override. Cost is an estimate: it prices cache writes at the 5-minute
rate and ignores long-context, batch and fast-mode surcharges.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Final


class PricingError(ValueError):
    """`HARNESS_PRICING` is malformed."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def as_json(self) -> dict[str, float]:
        """The `HARNESS_PRICING` spelling."""
        return {
            "input": self.input,
            "output": self.output,
            "cacheRead": self.cache_read,
            "cacheWrite": self.cache_write,
        }


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one or more model calls, by billing type."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_creation + other.cache_creation,
        )

    def as_json(self) -> dict[str, int]:
        return {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_creation,
        }


def _price(input_: float, output: float) -> Price:
    # Anthropic's standard multipliers: cache reads 0.1x input, 5-minute cache writes 1.25x.
    return Price(input_, output, round(input_ * 0.1, 6), round(input_ * 1.25, 6))


# Model family -> price, for the models whose prices are published in the pricing docs.
# Matched exactly on the id without its date stamp, so a newer model (say Opus 4.8) is
# "unknown" and needs HARNESS_PRICING instead of silently getting an older model's price.
BUILTIN_PRICES: Final[dict[str, Price]] = {
    "claude-opus-4": _price(15.0, 75.0),
    "claude-opus-4-0": _price(15.0, 75.0),
    "claude-opus-4-1": _price(15.0, 75.0),
    "claude-opus-4-5": _price(5.0, 25.0),
    "claude-opus-4-6": _price(5.0, 25.0),
    "claude-sonnet-4": _price(3.0, 15.0),
    "claude-sonnet-4-0": _price(3.0, 15.0),
    "claude-sonnet-4-5": _price(3.0, 15.0),
    "claude-sonnet-4-6": _price(3.0, 15.0),
    "claude-haiku-4-5": _price(1.0, 5.0),
    "claude-3-opus": _price(15.0, 75.0),
    "claude-3-7-sonnet": _price(3.0, 15.0),
    "claude-3-5-sonnet": _price(3.0, 15.0),
    "claude-3-5-haiku": _price(0.8, 4.0),
    "claude-3-haiku": Price(0.25, 1.25, 0.03, 0.3),
}

_BEDROCK_PREFIX = re.compile(r"^(?:[a-z]{2,6}\.)?anthropic\.")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")
_DATE = re.compile(r"-\d{8}$")


def model_family_id(model: str) -> str:
    """The first-party spelling of a provider's model id.

    `us.anthropic.claude-sonnet-4-5-20250929-v1:0` (Bedrock, also inside an inference
    profile ARN) and `claude-sonnet-4-5@20250929` (Vertex) both give
    `claude-sonnet-4-5-20250929`.
    """
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = _BEDROCK_VERSION.sub("", _BEDROCK_PREFIX.sub("", name))
    return name.replace("@", "-")


def builtin_price(model: str) -> Price | None:
    """The built-in price of `model`, or None if its family is not in the table."""
    return BUILTIN_PRICES.get(_DATE.sub("", model_family_id(model)))


_PRICING_KEYS: Final = {
    "input": "input",
    "output": "output",
    "cacheRead": "cache_read",
    "cacheWrite": "cache_write",
}


def parse_pricing(raw: str) -> Price:
    """Parse `HARNESS_PRICING`: `{"input": 3.0, "output": 15.0, "cacheRead": 0.3,
    "cacheWrite": 3.75}` in USD per million tokens; the cache prices default to 0.1x and
    1.25x of input."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise PricingError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PricingError("must be a JSON object")
    unknown = sorted(set(data) - set(_PRICING_KEYS))
    if unknown:
        raise PricingError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_PRICING_KEYS)}"
        )
    values: dict[str, float] = {}
    for key, field in _PRICING_KEYS.items():
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PricingError(f"{key} must be a number")
        if not math.isfinite(value) or value < 0:
            raise PricingError(f"{key} must be a finite number >= 0")
        values[field] = float(value)
    for required in ("input", "output"):
        if required not in values:
            raise PricingError(f"{required} is required")
    values.setdefault("cache_read", round(values["input"] * 0.1, 6))
    values.setdefault("cache_write", round(values["input"] * 1.25, 6))
    return Price(**values)


def cost_usd(usage: TokenUsage, price: Price) -> float:
    """The cost of `usage` at `price`."""
    micro = (
        usage.input * price.input
        + usage.output * price.output
        + usage.cache_read * price.cache_read
        + usage.cache_creation * price.cache_write
    )
    return micro / 1_000_000

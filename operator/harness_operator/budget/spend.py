"""Reading spend from Prometheus (I/O through a `MetricsProvider`).

Spend is the harness's cost over all tracks and revisions of the HarnessDeployment: its
`harness_cost_usd_total`, or, when it exports none, its `harness_tokens_total` times
`spec.model.pricing` (the same provenance as the cost checks). Spend in a window is the
increase since the window began; the burn rate is the cost rate over `burnWindow`.
"""

from __future__ import annotations

import math
from datetime import datetime

from harness_operator.analysis.providers.base import MetricsProvider, QueryError
from harness_operator.api.budget import BudgetSpec
from harness_operator.api.model import Pricing
from harness_operator.budget.ladder import SpendReading, WindowSpend
from harness_operator.budget.windows import window_bounds

_TOKEN_KINDS = (
    ("input", "input"),
    ("output", "output"),
    ("cache_read", "cache_read"),
    ("cache_creation", "cache_write"),
)


def cost_expression(selector: str, function: str, window: str, pricing: Pricing | None) -> str:
    """PromQL for the cost of `selector`'s series: `function` (`increase` or `rate`) over
    `window`, from the cost counter, else from tokens times prices."""
    counter = f"sum({function}(harness_cost_usd_total{{{selector}}}[{window}]))"
    if pricing is None:
        return counter
    per_token = {
        "input": pricing.input,
        "output": pricing.output,
        "cache_read": pricing.cache_read,
        "cache_write": pricing.cache_write,
    }
    tokens = " + ".join(
        f'(sum({function}(harness_tokens_total{{{selector},type="{kind}"}}[{window}]))'
        f" or vector(0)) * {per_token[price] / 1_000_000!r}"
        for kind, price in _TOKEN_KINDS
    )
    return f"({counter} or ({tokens}))"


def read_spend(
    provider: MetricsProvider,
    namespace: str,
    name: str,
    budget: BudgetSpec,
    pricing: Pricing | None,
    now: datetime,
) -> SpendReading:
    """Spend in every window of `budget`, the burn rate and recent spend-limit errors."""
    selector = f'namespace="{namespace}",harness="{name}"'
    try:
        windows = []
        for limit in budget.limits:
            start, reset = window_bounds(limit.window, now)
            elapsed = max(int((now - start).total_seconds()), 1)
            spent = provider.query(cost_expression(selector, "increase", f"{elapsed}s", pricing))
            windows.append(
                WindowSpend(
                    window=limit.window,
                    limit_usd=limit.usd,
                    spent_usd=_finite(spent),
                    resets_at=reset,
                )
            )
        burn = provider.query(
            f"{cost_expression(selector, 'rate', budget.burn_window, pricing)} * 3600"
        )
        refused = provider.query(
            f'sum(increase(harness_llm_errors_total{{{selector},error_class="spend_limit"}}[5m]))'
        )
    except QueryError as err:
        return SpendReading(now, (), None, 0.0, problem=str(err))
    return SpendReading(now, tuple(windows), _finite(burn), _finite(refused) or 0.0)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None

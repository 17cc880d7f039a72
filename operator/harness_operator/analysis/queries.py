"""PromQL of the checks: the built-in queries with their label contract and units, and the
rendering of `{{placeholder}}` templates for one track of one HarnessDeployment.

Rendering is plain text replacement of six exact tokens (no template language): nothing in
a query can run code, and an unknown `{{token}}` is an error rather than an empty string.
docs/metrics.md quotes every built-in query verbatim; a test keeps the two in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from harness_operator.analysis.errors import AnalysisConfigError
from harness_operator.api.analysis import (
    PLACEHOLDER_PATTERN,
    PLACEHOLDERS,
    PRICE_PLACEHOLDERS,
    Builtin,
    unknown_placeholders,
)
from harness_operator.api.model import Pricing
from harness_operator.naming import Track, track_name


@dataclass(frozen=True)
class Target:
    """The HarnessDeployment under analysis and the revisions its two tracks run."""

    name: str
    namespace: str
    stable_revision: str
    canary_revision: str
    pricing: Pricing | None = None
    """`spec.model.pricing`, for `{{price_*}}` (NaN without it: no cost from tokens)."""

    def revision(self, track: Track) -> str:
        """The revision `track` runs."""
        return self.stable_revision if track is Track.STABLE else self.canary_revision


def render_query(template: str, target: Target, track: str, window: str) -> str:
    """`template` with its placeholders replaced for `track` (`stable` or `canary`):
    `{{name}}`, `{{namespace}}`, `{{track}}`, `{{revision}}` (the track's revision),
    `{{window}}` and `{{workload}}` (`<name>-<track>`). Raises `AnalysisConfigError` on an
    unknown placeholder or track."""
    try:
        which = Track(track)
    except ValueError:
        raise AnalysisConfigError(f"track must be stable or canary, not {track!r}") from None
    if bad := unknown_placeholders(template):
        allowed = ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)
        raise AnalysisConfigError(f"unknown placeholder {', '.join(bad)}; use only {allowed}")
    values = {
        "name": target.name,
        "namespace": target.namespace,
        "track": str(which),
        "revision": target.revision(which),
        "window": window,
        "workload": track_name(target.name, which),
        **_prices(target.pricing),
    }
    return PLACEHOLDER_PATTERN.sub(lambda m: values[m.group(1)], template)


def _prices(pricing: Pricing | None) -> dict[str, str]:
    """USD per token of each kind; `NaN` without a price table, so a cost computed from
    tokens is no data rather than zero."""
    per_million = (
        (pricing.input, pricing.output, pricing.cache_read, pricing.cache_write)
        if pricing is not None
        else (math.nan,) * 4
    )
    return {
        name: "NaN" if math.isnan(value) else repr(value / 1_000_000)
        for name, value in zip(PRICE_PLACEHOLDERS, per_million, strict=True)
    }


# --- built-in queries --------------------------------------------------------------------

HARNESS_SELECTOR: Final = (
    'namespace="{{namespace}}",harness="{{name}}",track="{{track}}",revision="{{revision}}"'
)
"""Labels of the `harness_*` series of one track (ai-harness.md §3). `revision` keeps a
previous canary's series, still inside the window after a rollback, out of the new one's."""
ISTIO_SELECTOR: Final = (
    'reporter="destination",destination_workload_namespace="{{namespace}}",'
    'destination_workload="{{workload}}"'
)
"""Labels of Istio's standard metrics for the requests one track's pods received."""


UPSTREAM_CLASSES: Final = "rate_limit|overloaded|spend_limit"
"""Provider error classes that hit both tracks alike: left out of the task error rate,
and compared on their own (`upstreamErrorShare`)."""


def _harness(query: str) -> str:
    return query.replace("$SEL", HARNESS_SELECTOR)


def _per_finished_task(histogram: str) -> str:
    """Mean of a per-task histogram over the tasks that finished in the window."""
    return (
        f"(sum(rate({histogram}_sum{{$SEL}}[{{{{window}}}}]))"
        f" / sum(rate({histogram}_count{{$SEL}}[{{{{window}}}}])))"
    )


def _istio(query: str) -> str:
    return query.replace("$SEL", ISTIO_SELECTOR)


# `or vector(0)`: a track without a single error has no error series at all, and an empty
# numerator would make a healthy canary's error rate "no data" instead of 0.
BUILTIN_QUERIES: Final[dict[Builtin, str]] = {
    Builtin.ERROR_RATE: _harness(
        '(sum(rate(harness_requests_total{$SEL,outcome="error"}[{{window}}])) or vector(0))'
        " / sum(rate(harness_requests_total{$SEL}[{{window}}]))"
    ),
    Builtin.LATENCY_P95: _harness(
        "histogram_quantile(0.95,"
        " sum by (le) (rate(harness_request_duration_seconds_bucket{$SEL}[{{window}}])))"
    ),
    Builtin.COST_PER_HOUR: _harness("sum(rate(harness_cost_usd_total{$SEL}[{{window}}])) * 3600"),
    Builtin.COST_PER_REQUEST: _harness(
        "sum(rate(harness_cost_usd_total{$SEL}[{{window}}]))"
        " / sum(rate(harness_requests_total{$SEL}[{{window}}]))"
    ),
    Builtin.ISTIO_ERROR_RATE: _istio(
        '(sum(rate(istio_requests_total{$SEL,response_code=~"5.*"}[{{window}}])) or vector(0))'
        " / sum(rate(istio_requests_total{$SEL}[{{window}}]))"
    ),
    Builtin.ISTIO_LATENCY_P95: _istio(
        "histogram_quantile(0.95,"
        " sum by (le) (rate(istio_request_duration_milliseconds_bucket{$SEL}[{{window}}])))"
    ),
    # Per finished task (the harness metric set, docs/metrics.md §3). Best: the harness's
    # per-task histogram, observed when a task finishes, so numerator and denominator are
    # the same tasks. The per-call counters also hold turns of tasks still running, which
    # makes a young canary (or one whose tasks got slower) look costlier than it is. Then:
    # the harness's spend counter, else its token counters times spec.model.pricing.
    Builtin.COST_PER_TASK: _harness(
        _per_finished_task("harness_task_cost_usd")
        + " or (sum(rate(harness_cost_usd_total{$SEL}[{{window}}])) or ("
        + " + ".join(
            f'(sum(rate(harness_tokens_total{{$SEL,type="{kind}"}}[{{{{window}}}}]))'
            f" or vector(0)) * {{{{price_{price}}}}}"
            for kind, price in (
                ("input", "input"),
                ("output", "output"),
                ("cache_read", "cache_read"),
                ("cache_creation", "cache_write"),
            )
        )
        + ")) / sum(rate(harness_tasks_total{$SEL}[{{window}}]))"
    ),
    Builtin.OUTPUT_TOKENS_PER_TASK: _harness(
        _per_finished_task("harness_task_output_tokens")
        + ' or (sum(rate(harness_tokens_total{$SEL,type="output"}[{{window}}])) or vector(0))'
        " / sum(rate(harness_tasks_total{$SEL}[{{window}}]))"
    ),
    Builtin.TASK_ERROR_RATE: _harness(
        '(sum(rate(harness_tasks_total{$SEL,outcome!="success",'
        f'error_class!~"{UPSTREAM_CLASSES}"}}[{{{{window}}}}])) or vector(0))'
        " / sum(rate(harness_tasks_total{$SEL}[{{window}}]))"
    ),
    Builtin.UPSTREAM_ERROR_SHARE: _harness(
        f'(sum(rate(harness_llm_errors_total{{$SEL,error_class=~"{UPSTREAM_CLASSES}"}}'
        "[{{window}}])) or vector(0))"
        " / sum(rate(harness_llm_requests_total{$SEL}[{{window}}]))"
    ),
    Builtin.TOOL_FAILURE_RATE: _harness(
        '(sum(rate(harness_tool_calls_total{$SEL,outcome=~"error|timeout"}[{{window}}]))'
        " or vector(0)) / sum(rate(harness_tool_calls_total{$SEL}[{{window}}]))"
    ),
    Builtin.TASK_LATENCY_P95: _harness(
        "histogram_quantile(0.95,"
        " sum by (le) (rate(harness_task_duration_seconds_bucket{$SEL}[{{window}}])))"
    ),
    Builtin.TIME_TO_FIRST_TOKEN_P95: _harness(
        "histogram_quantile(0.95,"
        " sum by (le) (rate(harness_time_to_first_token_seconds_bucket{$SEL}[{{window}}])))"
    ),
}
"""The query of each built-in check, with placeholders."""

HARNESS_REQUESTS_GUARD: Final = _harness("sum(increase(harness_requests_total{$SEL}[{{window}}]))")
"""Requests a track finished in the window (harness metrics)."""
HARNESS_TASKS_GUARD: Final = _harness("sum(increase(harness_tasks_total{$SEL}[{{window}}]))")
"""Tasks a track finished in the window (any outcome): the evidence per-task checks need."""
ISTIO_REQUESTS_GUARD: Final = _istio("sum(increase(istio_requests_total{$SEL}[{{window}}]))")
"""Requests a track's pods received in the window (Istio metrics)."""

BUILTIN_GUARDS: Final[dict[Builtin, str]] = {
    b: (
        HARNESS_TASKS_GUARD
        if b.per_task
        else ISTIO_REQUESTS_GUARD
        if b.value.startswith("istio")
        else HARNESS_REQUESTS_GUARD
    )
    for b in Builtin
}
"""The default sample guard of each built-in check: its track's request count."""

BUILTIN_UNITS: Final[dict[Builtin, str]] = {
    Builtin.ERROR_RATE: "ratio 0..1",
    Builtin.LATENCY_P95: "seconds",
    Builtin.COST_PER_HOUR: "USD per hour",
    Builtin.COST_PER_REQUEST: "USD per request",
    Builtin.ISTIO_ERROR_RATE: "ratio 0..1",
    Builtin.ISTIO_LATENCY_P95: "milliseconds",
    Builtin.COST_PER_TASK: "USD per task",
    Builtin.OUTPUT_TOKENS_PER_TASK: "tokens per task",
    Builtin.TASK_ERROR_RATE: "ratio 0..1",
    Builtin.UPSTREAM_ERROR_SHARE: "ratio 0..1",
    Builtin.TOOL_FAILURE_RATE: "ratio 0..1",
    Builtin.TASK_LATENCY_P95: "seconds",
    Builtin.TIME_TO_FIRST_TOKEN_P95: "seconds",
}
"""Unit of each built-in check's value (and so of its `min`/`max`)."""

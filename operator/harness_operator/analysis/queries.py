"""PromQL of the checks: the built-in queries with their label contract and units, and the
rendering of `{{placeholder}}` templates for one track of one HarnessDeployment.

Rendering is plain text replacement of six exact tokens (no template language): nothing in
a query can run code, and an unknown `{{token}}` is an error rather than an empty string.
docs/metrics.md quotes every built-in query verbatim; a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from harness_operator.analysis.errors import AnalysisConfigError
from harness_operator.api.analysis import (
    PLACEHOLDER_PATTERN,
    PLACEHOLDERS,
    Builtin,
    unknown_placeholders,
)
from harness_operator.naming import Track, track_name


@dataclass(frozen=True)
class Target:
    """The HarnessDeployment under analysis and the revisions its two tracks run."""

    name: str
    namespace: str
    stable_revision: str
    canary_revision: str

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
    }
    return PLACEHOLDER_PATTERN.sub(lambda m: values[m.group(1)], template)


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


def _harness(query: str) -> str:
    return query.replace("$SEL", HARNESS_SELECTOR)


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
}
"""The query of each built-in check, with placeholders."""

HARNESS_REQUESTS_GUARD: Final = _harness("sum(increase(harness_requests_total{$SEL}[{{window}}]))")
"""Requests a track finished in the window (harness metrics)."""
ISTIO_REQUESTS_GUARD: Final = _istio("sum(increase(istio_requests_total{$SEL}[{{window}}]))")
"""Requests a track's pods received in the window (Istio metrics)."""

BUILTIN_GUARDS: Final[dict[Builtin, str]] = {
    b: ISTIO_REQUESTS_GUARD if b.value.startswith("istio") else HARNESS_REQUESTS_GUARD
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
}
"""Unit of each built-in check's value (and so of its `min`/`max`)."""

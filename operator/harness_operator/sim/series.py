"""The series the simulation exports: what a harness's /metrics and Istio's sidecar telemetry
would show for each track.

A custom collector rather than prometheus_client metric objects, because the simulation
must be able to drop a track's series entirely (silent), to start them anew when the
track's revision changes (a new pod) and to expose every label combination at zero from the
start (so that a ratio over a track without errors is 0, and over a frozen track 0/0 = NaN,
never an empty vector). The caller serialises access (one lock in `TrafficSim`).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from harness_operator.naming import Track, track_name

DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08,
    0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8,
    1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 300.0,
)  # fmt: skip
"""Upper bounds (seconds) of `harness_request_duration_seconds`. At most 1.33x apart between
0.05 and 30 s, so `histogram_quantile`'s linear interpolation lands within a few percent of
the true p95. Istio's histogram uses the same bounds in milliseconds (the real Istio default
is coarser; finer bounds keep a latency check on Istio data as accurate as on ours)."""

OUTCOMES: Final = ("success", "error")
TOKEN_TYPES: Final = ("input", "output")
RESPONSE_CODES: Final = {"success": "200", "error": "500"}

HARNESS_LABELS: Final = ("namespace", "harness", "track", "revision")
ISTIO_LABELS: Final = (
    "reporter",
    "destination_workload",
    "destination_workload_namespace",
    "response_code",
)


def _bucket_counts() -> list[int]:
    return [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf


@dataclass
class Histogram:
    """Per-bucket (not cumulative) counts and the sum of observations; observations are in
    seconds, exported in seconds times `scale` (1000 for milliseconds)."""

    scale: float = 1.0
    counts: list[int] = field(default_factory=_bucket_counts)
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.total += seconds * self.scale

    def cumulative(self) -> list[tuple[str, float]]:
        """`(le, count)` pairs as HistogramMetricFamily wants them."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            out.append((_le(bound * self.scale), float(running)))
        return out


def _le(bound: float) -> str:
    """An `le` label value: `+Inf`, or the bound without float noise (0.06 x 1000 → 60.0)."""
    return "+Inf" if math.isinf(bound) else repr(round(bound, 9))


@dataclass
class TrackSeries:
    """Everything one track (at one revision) has reported since its series began."""

    revision: str
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    duration: Histogram = field(default_factory=Histogram)
    cost_usd: float = 0.0
    tokens: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TOKEN_TYPES, 0.0))
    istio_duration: dict[str, Histogram] = field(
        default_factory=lambda: {code: Histogram(scale=1000.0) for code in RESPONSE_CODES.values()}
    )

    def record(
        self, *, error: bool, latency: float, cost: float, input_tokens: float, output_tokens: float
    ) -> None:
        outcome = "error" if error else "success"
        self.requests[outcome] += 1
        self.duration.observe(latency)
        self.cost_usd += cost
        self.tokens["input"] += input_tokens
        self.tokens["output"] += output_tokens
        self.istio_duration[RESPONSE_CODES[outcome]].observe(latency)


def families(namespace: str, name: str, tracks: dict[Track, TrackSeries]) -> Iterator[Metric]:
    """Metric families for the given tracks' series (the tracks to show, already filtered)."""
    requests = CounterMetricFamily(
        "harness_requests",
        "Requests the harness handled, by outcome.",
        labels=[*HARNESS_LABELS, "outcome"],
    )
    duration = HistogramMetricFamily(
        "harness_request_duration_seconds",
        "Time to answer a request.",
        labels=list(HARNESS_LABELS),
    )
    cost = CounterMetricFamily(
        "harness_cost_usd", "Estimated provider cost of the requests.", labels=list(HARNESS_LABELS)
    )
    tokens = CounterMetricFamily(
        "harness_tokens", "LLM tokens used, by type.", labels=[*HARNESS_LABELS, "type"]
    )
    istio_requests = CounterMetricFamily(
        "istio_requests", "Requests seen by the destination sidecar.", labels=list(ISTIO_LABELS)
    )
    istio_duration = HistogramMetricFamily(
        "istio_request_duration_milliseconds",
        "Request duration seen by the destination sidecar.",
        labels=list(ISTIO_LABELS),
    )
    for track, series in tracks.items():
        base = [namespace, name, str(track), series.revision]
        for outcome in OUTCOMES:
            requests.add_metric([*base, outcome], series.requests[outcome])
        duration.add_metric(base, series.duration.cumulative(), series.duration.total)
        cost.add_metric(base, series.cost_usd)
        for token_type in TOKEN_TYPES:
            tokens.add_metric([*base, token_type], series.tokens[token_type])
        workload = track_name(name, track)
        for outcome, code in RESPONSE_CODES.items():
            istio = ["destination", workload, namespace, code]
            istio_requests.add_metric(istio, series.requests[outcome])
            histogram = series.istio_duration[code]
            istio_duration.add_metric(istio, histogram.cumulative(), histogram.total)
    yield from (requests, duration, cost, tokens, istio_requests, istio_duration)

"""The `harness_*` Prometheus series the operator's canary analysis reads.

Owns one `CollectorRegistry` per app instance (so tests can run several apps in one
process) and the metric definitions. Labels are low-cardinality by design: never a task,
session or user id. Pod identity (namespace, harness, track, revision) is added by
Prometheus at scrape time from pod labels, not here.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from harness_app.pricing import TokenUsage

# 0.1 s doubling to 409.6 s, then 10 and 30 minutes: agent tasks run seconds to minutes.
DURATION_BUCKETS: Final = (*(round(0.1 * 2**i, 1) for i in range(13)), 600.0, 1800.0)
TTFT_BUCKETS: Final = tuple(round(0.025 * 2**i, 3) for i in range(12))  # 0.025 .. 51.2 s
TURN_BUCKETS: Final = tuple(float(2**i) for i in range(8))  # 1, 2, 4 .. 128
TOKEN_BUCKETS: Final = tuple(float(250 * 4**i) for i in range(8))  # 250 .. 4,096,000
COST_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0,
)  # fmt: skip

TASK_OUTCOMES: Final = ("success", "error", "max_turns", "budget_exceeded", "timeout", "cancelled")
REQUEST_OUTCOMES: Final = ("success", "client_error", "error")
TASKS_ROUTE: Final = "/v1/tasks"


class Metrics:
    """All series of one harness process."""

    def __init__(self, *, provider: str, model: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.provider = provider
        self.model = model
        r = self.registry
        self.tasks = Counter(
            "harness_tasks", "Finished tasks.", ["outcome", "error_class"], registry=r
        )
        self.task_duration = Histogram(
            "harness_task_duration_seconds",
            "Wall time of a task, from admission to its result.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "harness_time_to_first_token_seconds",
            "Time from sending a streaming model request to its first content delta.",
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.task_turns = Histogram(
            "harness_task_turns", "Model calls per task.", buckets=TURN_BUCKETS, registry=r
        )
        self.tokens = Counter(
            "harness_tokens", "Tokens used.", ["provider", "model", "type"], registry=r
        )
        self.cost = Counter(
            "harness_cost_usd",
            "Estimated spend in USD (tokens x price table).",
            ["provider", "model"],
            registry=r,
        )
        self.task_cost = Histogram(
            "harness_task_cost_usd",
            "Estimated spend of one task in USD.",
            buckets=COST_BUCKETS,
            registry=r,
        )
        # Per task, observed when it finishes: the operator's per-task checks prefer these to
        # the per-call counters, which also hold the turns of tasks still running.
        self.task_output_tokens = Histogram(
            "harness_task_output_tokens",
            "Output tokens of one task.",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.llm_requests = Counter(
            "harness_llm_requests",
            "Model API requests (every attempt, retries included).",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.llm_errors = Counter(
            "harness_llm_errors",
            "Failed model API requests by cause.",
            ["provider", "model", "error_class"],
            registry=r,
        )
        self.llm_retries = Counter(
            "harness_llm_retries",
            "Model API requests repeated after a retryable failure.",
            ["provider", "model", "reason"],
            registry=r,
        )
        self.tool_calls = Counter(
            "harness_tool_calls", "Tool executions.", ["tool", "outcome"], registry=r
        )
        self.inflight = Gauge("harness_inflight_tasks", "Tasks running now.", registry=r)
        self.requests = Counter(
            "harness_requests",
            "Task API requests answered, by status class.",
            ["route", "outcome"],
            registry=r,
        )
        self.request_duration = Histogram(
            "harness_request_duration_seconds",
            "Task API request latency.",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.build_info = Gauge(
            "harness_build_info",
            "Build and configuration of this process (always 1).",
            ["version", "sdk_version", "model", "provider", "prompt_sha"],
            registry=r,
        )
        self._initialise_series()

    def _initialise_series(self) -> None:
        # Series that exist from the start read as 0 instead of "no data" in rate() queries.
        self.tasks.labels(outcome="success", error_class="")
        for outcome in REQUEST_OUTCOMES:
            self.requests.labels(route=TASKS_ROUTE, outcome=outcome)
        self.request_duration.labels(route=TASKS_ROUTE)
        for outcome in ("success", "error"):
            self.llm_requests.labels(self.provider, self.model, outcome)
        for kind in ("input", "output", "cache_read", "cache_creation"):
            self.tokens.labels(self.provider, self.model, kind)
        self.cost.labels(self.provider, self.model)

    def record_usage(self, usage: TokenUsage, cost_usd: float) -> None:
        """Tokens and spend of one model call, counted as soon as the call returns."""
        labels = (self.provider, self.model)
        self.tokens.labels(*labels, "input").inc(usage.input)
        self.tokens.labels(*labels, "output").inc(usage.output)
        self.tokens.labels(*labels, "cache_read").inc(usage.cache_read)
        self.tokens.labels(*labels, "cache_creation").inc(usage.cache_creation)
        self.cost.labels(*labels).inc(cost_usd)

    def llm_success(self) -> None:
        self.llm_requests.labels(self.provider, self.model, "success").inc()

    def llm_error(self, error_class: str) -> None:
        self.llm_requests.labels(self.provider, self.model, "error").inc()
        self.llm_errors.labels(self.provider, self.model, error_class).inc()

    def llm_retry(self, reason: str) -> None:
        self.llm_retries.labels(self.provider, self.model, reason).inc()

    def task_finished(
        self,
        outcome: str,
        error_class: str,
        duration: float,
        turns: int,
        cost_usd: float,
        output_tokens: int,
    ) -> None:
        self.tasks.labels(outcome=outcome, error_class=error_class).inc()
        self.task_duration.observe(duration)
        self.task_turns.observe(turns)
        self.task_cost.observe(cost_usd)
        self.task_output_tokens.observe(output_tokens)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

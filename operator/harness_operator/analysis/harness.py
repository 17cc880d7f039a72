"""The default checks of a harness: what an agent release is judged on when the spec names
a model, before anyone writes a check (ai-harness.md §4).

Flagger and Argo Rollouts judge a release by HTTP errors and latency; an agent harness's
worst regressions return 200 and show up as cost, tokens, tool failures and provider
trouble. Every check compares the canary with stable over the same window, per finished
task, and waits for `analysis.minTasks` finished tasks per track before any verdict. The
provider's rate limits, overload and spend limits hit both tracks alike, so they are left
out of the task error rate and compared on their own: a storm on both tracks never fails a
canary; a canary that alone draws them does.
"""

from __future__ import annotations

from typing import Final

from harness_operator.api.analysis import Builtin, Check, OnNoData, PassWhen, RelativeBounds

DEFAULT_HARNESS_CHECKS: Final[tuple[Check, ...]] = (
    Check(
        name="cost-per-task",
        builtin=Builtin.COST_PER_TASK,
        relative_to_stable=RelativeBounds(max=1.25),
    ),
    Check(
        name="output-tokens-per-task",
        builtin=Builtin.OUTPUT_TOKENS_PER_TASK,
        relative_to_stable=RelativeBounds(max=1.5),
    ),
    Check(
        # Fails above 5 % *and* more than 2 points above stable.
        name="task-error-rate",
        builtin=Builtin.TASK_ERROR_RATE,
        max=0.05,
        relative_to_stable=RelativeBounds(max_increase=0.02),
        pass_when=PassWhen.ANY,
    ),
    Check(
        # Provider rate limits / overload per model call: fails when the canary draws more
        # than 5 % of them *and* twice stable's share (e.g. a prompt that trips limits).
        name="upstream-errors",
        builtin=Builtin.UPSTREAM_ERROR_SHARE,
        max=0.05,
        relative_to_stable=RelativeBounds(max=2.0),
        pass_when=PassWhen.ANY,
    ),
    Check(
        # No tool calls at all (a harness without tools) is no data: it passes.
        name="tool-failure-rate",
        builtin=Builtin.TOOL_FAILURE_RATE,
        max=0.02,
        relative_to_stable=RelativeBounds(max_increase=0.02),
        pass_when=PassWhen.ANY,
        on_no_data=OnNoData.PASS,
    ),
    Check(
        name="task-latency-p95",
        builtin=Builtin.TASK_LATENCY_P95,
        relative_to_stable=RelativeBounds(max=1.3),
    ),
    Check(
        # A harness that does not stream exports no time to first token: it passes.
        name="time-to-first-token-p95",
        builtin=Builtin.TIME_TO_FIRST_TOKEN_P95,
        relative_to_stable=RelativeBounds(max=1.3),
        on_no_data=OnNoData.PASS,
    ),
)
"""The default harness checks, in the order they are evaluated and shown."""

DEFAULT_HARNESS_CHECK_NAMES: Final = tuple(c.name for c in DEFAULT_HARNESS_CHECKS)

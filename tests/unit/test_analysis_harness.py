"""The harness checks: defaults for every HarnessDeployment with a model, per finished
task and canary against stable; upstream provider trouble is not the canary's fault unless
the canary alone draws it; too few finished tasks hold the step; cost comes from the
harness's counter or from its tokens times the spec's prices."""

from __future__ import annotations

from typing import Any

import pytest

from harness_operator.analysis import (
    AnalysisConfigError,
    Outcome,
    Target,
    evaluate,
    render_query,
    resolve_checks,
)
from harness_operator.analysis.harness import DEFAULT_HARNESS_CHECK_NAMES
from harness_operator.analysis.queries import BUILTIN_QUERIES, HARNESS_TASKS_GUARD
from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.analysis import AnalysisSpec, Builtin, Check
from harness_operator.api.model import Pricing
from unit.test_analysis_checks import NOW, TARGET, FakeProvider

MODEL = {
    "provider": "anthropic",
    "name": "claude-sonnet-4-6",
    "credentials": {"secretRef": {"name": "k", "key": "api-key"}},
}


def harness(**analysis: Any) -> HarnessDeploymentSpec:
    raw: dict[str, Any] = {"image": "x", "model": MODEL}
    if analysis:
        raw["analysis"] = analysis
    return HarnessDeploymentSpec.model_validate(raw)


def names(spec: HarnessDeploymentSpec) -> list[str]:
    analysis = spec.analysis_settings
    assert analysis is not None
    return [c.name for c in resolve_checks(analysis, {}, harness=spec.harness_checks_apply)]


def test_a_harness_gets_the_default_checks_without_writing_any() -> None:
    spec = harness()
    assert spec.analysis is None
    assert names(spec) == list(DEFAULT_HARNESS_CHECK_NAMES)
    assert "cost-per-task" in DEFAULT_HARNESS_CHECK_NAMES


def test_without_a_model_there_are_no_defaults() -> None:
    spec = HarnessDeploymentSpec.model_validate({"image": "x"})
    assert spec.analysis_settings is None
    with pytest.raises(ValueError, match=r"the harness checks apply only with spec\.model"):
        HarnessDeploymentSpec.model_validate({"image": "x", "analysis": {"harnessChecks": {}}})


def test_defaults_can_be_turned_off_one_by_one_or_all() -> None:
    spec = harness(harnessChecks={"disabled": ["time-to-first-token-p95", "tool-failure-rate"]})
    assert "time-to-first-token-p95" not in names(spec)
    assert "tool-failure-rate" not in names(spec)
    assert "cost-per-task" in names(spec)
    off = harness(
        harnessChecks={"enabled": False},
        checks=[{"name": "mine", "builtin": "errorRate", "max": 0.1}],
    )
    assert names(off) == ["mine"]


def test_a_check_of_the_same_name_replaces_the_default() -> None:
    spec = harness(
        checks=[{"name": "cost-per-task", "builtin": "costPerTask", "relativeToStable": {"max": 2}}]
    )
    resolved = resolve_checks(spec.analysis_settings or AnalysisSpec(), {}, harness=True)
    (cost,) = [c for c in resolved if c.name == "cost-per-task"]
    assert cost.relative_to_stable is not None
    assert cost.relative_to_stable.max == 2
    assert [c.name for c in resolved].count("cost-per-task") == 1


def test_an_unknown_disabled_name_is_an_error_naming_the_defaults() -> None:
    spec = harness(harnessChecks={"disabled": ["cost"]})
    with pytest.raises(AnalysisConfigError, match="no default check cost; the defaults are"):
        names(spec)


# --- evaluation --------------------------------------------------------------------------


def default(name: str) -> Check:
    (found,) = [
        c
        for c in resolve_checks(AnalysisSpec(harness_checks={}), {}, harness=True)
        if c.name == name
    ]
    return found


def answers(
    builtin: Builtin,
    canary: float | None,
    stable: float | None,
    tasks: tuple[float, float] = (50, 50),
    target: Target = TARGET,
) -> dict[str, float | None]:
    def q(template: str, track: str) -> str:
        return render_query(template, target, track, "1m")

    return {
        q(BUILTIN_QUERIES[builtin], "canary"): canary,
        q(BUILTIN_QUERIES[builtin], "stable"): stable,
        q(HARNESS_TASKS_GUARD, "canary"): tasks[0],
        q(HARNESS_TASKS_GUARD, "stable"): tasks[1],
    }


def outcome(name: str, table: dict[str, float | None], target: Target = TARGET) -> Outcome:
    (result,) = evaluate(
        [default(name)], AnalysisSpec(harness_checks={}), target, FakeProvider(table), NOW
    ).results
    return result.outcome


@pytest.mark.parametrize(
    ("canary", "stable", "expected"),
    [
        (0.010, 0.010, Outcome.PASS),
        (0.0125, 0.010, Outcome.PASS),  # 1.25x: inclusive
        (0.020, 0.010, Outcome.FAIL),  # cost per task doubled
    ],
)
def test_cost_per_task_relative_to_stable(canary: float, stable: float, expected: Outcome) -> None:
    assert outcome("cost-per-task", answers(Builtin.COST_PER_TASK, canary, stable)) is expected


def test_a_429_storm_on_both_tracks_is_not_the_canarys_fault() -> None:
    # A quarter of all model calls rate limited on both tracks: share ratio 1.0.
    storm = answers(Builtin.UPSTREAM_ERROR_SHARE, 0.25, 0.24)
    assert outcome("upstream-errors", storm) is Outcome.PASS
    # The task error rate leaves those classes out (the query does; here: both low).
    assert outcome("task-error-rate", answers(Builtin.TASK_ERROR_RATE, 0.01, 0.01)) is Outcome.PASS


def test_a_canary_that_alone_draws_529s_fails() -> None:
    assert (
        outcome("upstream-errors", answers(Builtin.UPSTREAM_ERROR_SHARE, 0.2, 0.0)) is Outcome.FAIL
    )
    # A trickle on the canary alone is below the 5 % floor: not enough to blame it.
    assert (
        outcome("upstream-errors", answers(Builtin.UPSTREAM_ERROR_SHARE, 0.01, 0.0)) is Outcome.PASS
    )


@pytest.mark.parametrize(
    ("canary", "stable", "expected"),
    [
        (0.04, 0.0, Outcome.PASS),  # below 5 %
        (0.08, 0.07, Outcome.PASS),  # above 5 %, but within 2 points of stable
        (0.08, 0.05, Outcome.FAIL),  # above 5 % and 3 points over stable
    ],
)
def test_task_error_rate_fails_only_above_the_floor_and_stable(
    canary: float, stable: float, expected: Outcome
) -> None:
    assert outcome("task-error-rate", answers(Builtin.TASK_ERROR_RATE, canary, stable)) is expected


def test_too_few_finished_tasks_hold_the_step() -> None:
    few = answers(Builtin.COST_PER_TASK, 0.05, 0.01, tasks=(3, 50))
    assert outcome("cost-per-task", few) is Outcome.INCONCLUSIVE
    few_stable = answers(Builtin.COST_PER_TASK, 0.05, 0.01, tasks=(50, 3))
    assert outcome("cost-per-task", few_stable) is Outcome.INCONCLUSIVE


def test_no_tool_calls_and_no_streaming_are_not_failures() -> None:
    assert (
        outcome("tool-failure-rate", answers(Builtin.TOOL_FAILURE_RATE, None, None)) is Outcome.PASS
    )
    ttft = answers(Builtin.TIME_TO_FIRST_TOKEN_P95, None, None)
    assert outcome("time-to-first-token-p95", ttft) is Outcome.PASS


def test_cost_without_a_counter_or_prices_is_no_data() -> None:
    assert (
        outcome("cost-per-task", answers(Builtin.COST_PER_TASK, None, None)) is Outcome.INCONCLUSIVE
    )


def test_the_cost_query_uses_the_spec_prices() -> None:
    priced = Target(**{**TARGET.__dict__, "pricing": Pricing(input=3, output=15)})
    rendered = render_query(BUILTIN_QUERIES[Builtin.COST_PER_TASK], priced, "canary", "1m")
    assert "* 3e-06" in rendered
    assert "* 1.5e-05" in rendered
    # Per-task histogram first, then the spend counter, then tokens x prices.
    first, counter, tokens = (
        rendered.index(f"({metric}")
        for metric in (
            "sum(rate(harness_task_cost_usd_sum{",
            "sum(rate(harness_cost_usd_total{",
            "sum(rate(harness_tokens_total{",
        )
    )
    assert first == 0
    assert counter < tokens
    assert first < counter

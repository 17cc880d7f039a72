"""Spend budgets, without a cluster: windows and their resets, the ladder from spend, the
release engine applying each step (warn, block promotion, abort the canary, stop spending)
and lifting it (window reset, annotation), what a stop renders, the spend queries, and that
a budget edit is never a release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.budget import BudgetSpec
from harness_operator.api.status import BudgetStep, Phase
from harness_operator.budget import SpendReading, WindowSpend, evaluate_ladder, window_bounds
from harness_operator.budget.spend import read_spend
from harness_operator.naming import Track
from harness_operator.render import ReleaseState, render, revision
from harness_operator.render.state import ObjectKey
from harness_operator.rollout import REASON_ABORTED
from harness_operator.rollout.controls import CONTROL_LIFT_BUDGET
from harness_operator.rollout.machine import REASON_BUDGET
from unit.render_helpers import HD, find
from unit.test_rollout_driver import Release, harness_spec

T = datetime(2026, 12, 1, 14, 37, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "start", "reset"),
    [
        ("hour", datetime(2026, 12, 1, 14, tzinfo=UTC), datetime(2026, 12, 1, 15, tzinfo=UTC)),
        ("day", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)),
        ("month", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (
            "10m",
            datetime(2026, 12, 1, 14, 30, tzinfo=UTC),
            datetime(2026, 12, 1, 14, 40, tzinfo=UTC),
        ),
    ],
)
def test_window_bounds(window: str, start: datetime, reset: datetime) -> None:
    assert window_bounds(window, T) == (start, reset)


BUDGET = BudgetSpec.model_validate({"limits": [{"window": "hour", "usd": 10}]})


def reading(
    spent: float, *, at: datetime = T, refused: float = 0, burn: float = 4.0
) -> SpendReading:
    _, reset = window_bounds("hour", at)
    return SpendReading(at, (WindowSpend("hour", 10.0, spent, reset),), burn, refused)


@pytest.mark.parametrize(
    ("spent", "step"),
    [
        (0.0, BudgetStep.WITHIN),
        (4.99, BudgetStep.WITHIN),
        (5.0, BudgetStep.WARNING),
        (8.0, BudgetStep.PROMOTION_BLOCKED),
        (10.0, BudgetStep.CANARY_ABORTED),
        (12.0, BudgetStep.STOPPED),
    ],
)
def test_the_ladder_follows_the_fraction_of_the_limit(spent: float, step: BudgetStep) -> None:
    assert evaluate_ladder(BUDGET, reading(spent), None).step is step


def test_the_tightest_window_decides_and_is_named() -> None:
    budget = BudgetSpec.model_validate(
        {"limits": [{"window": "hour", "usd": 10}, {"window": "day", "usd": 50}]}
    )
    _, hour_reset = window_bounds("hour", T)
    _, day_reset = window_bounds("day", T)
    spent = SpendReading(
        T,
        (WindowSpend("hour", 10, 2.0, hour_reset), WindowSpend("day", 50, 45.0, day_reset)),
        4.0,
        0,
    )
    status = evaluate_ladder(budget, spent, None)
    assert status.step is BudgetStep.PROMOTION_BLOCKED
    assert status.reason is not None
    assert status.reason.startswith("day: $45.0000 of $50 (90%)")


def test_status_shows_remaining_and_projected_exhaustion() -> None:
    status = evaluate_ladder(BUDGET, reading(6.0, burn=16.0), None)
    (window,) = status.windows
    assert (window.limit_usd, window.spent_usd, window.remaining_usd) == (10, 6.0, 4.0)
    assert window.exhausts_at == T + timedelta(minutes=15)  # $4 left at $16/h
    assert window.resets_at == datetime(2026, 12, 1, 15, tzinfo=UTC)
    slow = evaluate_ladder(BUDGET, reading(6.0, burn=1.0), None).windows[0]
    assert slow.exhausts_at is None, "not before the window resets"


def test_a_provider_spend_limit_error_stops_spending() -> None:
    status = evaluate_ladder(BUDGET, reading(0.0, refused=3), None)
    assert status.step is BudgetStep.STOPPED
    assert "spend-limit" in (status.reason or "")


def test_a_lift_holds_until_the_window_resets_then_spend_decides() -> None:
    over = evaluate_ladder(BUDGET, reading(12.0), None)
    lifted = evaluate_ladder(BUDGET, reading(12.0), over, lift=True)
    assert lifted.step is BudgetStep.WITHIN
    assert lifted.lifted_until == datetime(2026, 12, 1, 15, tzinfo=UTC)
    still = evaluate_ladder(BUDGET, reading(13.0, at=T + timedelta(minutes=5)), lifted)
    assert still.step is BudgetStep.WITHIN
    # The next hour: the lift is over, and spend starts from zero.
    later = T + timedelta(hours=1)
    fresh = evaluate_ladder(BUDGET, reading(0.5, at=later), still)
    assert (fresh.step, fresh.lifted_until) == (BudgetStep.WITHIN, None)
    again = evaluate_ladder(BUDGET, reading(11.0, at=later + timedelta(minutes=1)), fresh)
    assert again.step is BudgetStep.CANARY_ABORTED


def test_an_unreadable_spend_keeps_the_step() -> None:
    over = evaluate_ladder(BUDGET, reading(12.0), None)
    broken = SpendReading(T + timedelta(minutes=1), (), None, 0, problem="prometheus down")
    kept = evaluate_ladder(BUDGET, broken, over)
    assert kept.step is BudgetStep.STOPPED
    assert "prometheus down" in (kept.reason or "")


# --- the spend queries -------------------------------------------------------------------


class Provider:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def query(self, promql: str) -> float | None:
        self.asked.append(promql)
        return 1.5


def test_spend_is_read_per_window_from_the_cost_series() -> None:
    provider = Provider()
    budget = BudgetSpec.model_validate(
        {"limits": [{"window": "hour", "usd": 10}, {"window": "10m", "usd": 2}]}
    )
    spend = read_spend(provider, "agents", "pr", budget, None, T)
    assert [w.spent_usd for w in spend.windows] == [1.5, 1.5]
    hour, ten, burn, refused = provider.asked
    assert hour == 'sum(increase(harness_cost_usd_total{namespace="agents",harness="pr"}[2232s]))'
    assert ten == 'sum(increase(harness_cost_usd_total{namespace="agents",harness="pr"}[432s]))'
    assert burn == 'sum(rate(harness_cost_usd_total{namespace="agents",harness="pr"}[15m])) * 3600'
    assert 'error_class="spend_limit"' in refused


# --- the release engine ------------------------------------------------------------------

MODEL = {
    "provider": "anthropic",
    "name": "claude-sonnet-4-6",
    "credentials": {"secretRef": {"name": "k", "key": "api-key"}},
}


def budgeted(stop_action: str = "killSwitch") -> dict[str, Any]:
    return {
        **harness_spec(),
        "model": MODEL,
        "budget": {"limits": [{"window": "hour", "usd": 10}], "stopAction": stop_action},
    }


def spend(release: Release, usd: float) -> None:
    release.spend = reading(usd, at=release.now)


def test_each_step_fires_in_order_and_says_so() -> None:
    release = Release.at_rest(spec=budgeted())
    release.release("2.0.0")
    release.run_until(lambda r: r.weight > 0, limit=60)
    for usd in (5.0, 8.0):
        spend(release, usd)
        release.tick()
    weight = release.weight
    release.run_for(60)  # frozen: no step is taken while promotion is blocked
    assert release.weight == weight
    assert release.phase is Phase.PROGRESSING
    spend(release, 10.0)
    plan = release.tick()
    assert release.phase is Phase.ROLLED_BACK
    assert release.status.rollback is not None
    assert release.status.rollback.reason == REASON_BUDGET
    assert plan.route_first is True
    assert plan.state.canary_weight == 0
    spend(release, 12.0)
    plan = release.tick()
    assert plan.state.stop_spending is not None
    ladder = [r for r in release.reasons() if r.startswith(("Budget", "RolledBack"))]
    assert ladder == [
        "BudgetWarning",
        "BudgetPromotionBlocked",
        "BudgetCanaryAborted",
        "RolledBack",
        "BudgetStopped",
    ]


def test_no_release_starts_while_the_canary_would_be_aborted() -> None:
    release = Release.at_rest(spec=budgeted())
    spend(release, 10.5)
    release.tick()
    release.spend = None
    release.release("2.0.0")
    release.run_for(30)
    assert release.phase is Phase.READY
    assert release.status.canary_revision == release.status.stable_revision
    assert "waits for the spend budget" in (release.status.message or "")
    # The window resets: spend is back to zero, the release starts.
    release.now = datetime(2026, 12, 1, 15, 0, 1, tzinfo=UTC)
    spend(release, 0.1)
    release.run_until(lambda r: r.phase is Phase.PROGRESSING, limit=5)


def test_the_lift_annotation_lifts_at_once() -> None:
    release = Release.at_rest(spec=budgeted())
    spend(release, 12.5)
    release.tick()
    assert release.status.budget is not None
    assert release.status.budget.step is BudgetStep.STOPPED
    release.annotate(CONTROL_LIFT_BUDGET)
    spend(release, 12.5)  # the controller reads spend whenever a lift arrives
    plan = release.tick()
    assert release.status.budget.step is BudgetStep.WITHIN
    assert plan.state.stop_spending is None
    assert "BudgetWithin" in release.reasons()


def test_abort_by_hand_is_not_a_budget_rollback() -> None:
    assert REASON_ABORTED != REASON_BUDGET


# --- what a stop renders -----------------------------------------------------------------


def stopped(stop_action: str, **extra: Any) -> tuple[HarnessDeploymentSpec, ReleaseState]:
    spec = HarnessDeploymentSpec.model_validate({**budgeted(stop_action), "image": "x:1", **extra})
    state = ReleaseState.at_rest(spec)
    return spec, ReleaseState(
        stable_spec=spec,
        canary_spec=spec,
        stop_spending=spec.budget.stop_action,  # type: ignore[union-attr]
    ) if state else state


def test_the_kill_switch_is_a_configmap_the_pods_mount() -> None:
    spec, state = stopped("killSwitch")
    desired = render(HD, spec, state)
    controls = find(desired.objects, "ConfigMap", "pr-reviewer-controls")
    assert controls["data"] == {"stop": "true"}
    at_rest = render(HD, spec, ReleaseState.at_rest(spec))
    assert find(at_rest.objects, "ConfigMap", "pr-reviewer-controls")["data"] == {"stop": "false"}
    stable = find(desired.objects, "Deployment", "pr-reviewer-stable")
    assert stable["spec"]["replicas"] == 3, "the kill switch keeps the pods (ready) running"


def test_scale_to_zero_removes_the_autoscalers() -> None:
    spec, state = stopped("scaleToZero", autoscaling={"minReplicas": 2, "maxReplicas": 5})
    desired = render(HD, spec, state)
    for track in Track:
        assert find(desired.objects, "Deployment", f"pr-reviewer-{track}")["spec"]["replicas"] == 0
    assert (
        ObjectKey("autoscaling/v2", "HorizontalPodAutoscaler", "agents", "pr-reviewer-stable")
        in desired.absent
    )


def test_a_budget_edit_is_never_a_release() -> None:
    spec, _ = stopped("killSwitch")
    other = HarnessDeploymentSpec.model_validate(
        {
            **spec.to_k8s(),
            "budget": {"limits": [{"window": "day", "usd": 99}], "stopAction": "scaleToZero"},
        }
    )
    without = HarnessDeploymentSpec.model_validate({**spec.to_k8s(), "budget": None})
    assert revision(spec, {}) == revision(other, {}) == revision(without, {})


def test_the_budgets_doc_example_is_valid() -> None:
    import re
    from pathlib import Path

    import yaml

    from harness_operator.api import HarnessDeployment

    text = (Path(__file__).resolve().parents[2] / "docs" / "budgets.md").read_text()
    (example,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "kind:" in b]
    hd = HarnessDeployment.model_validate(yaml.safe_load(example))
    assert hd.spec.budget is not None
    assert [limit.window for limit in hd.spec.budget.limits] == ["hour", "day", "month"]

"""Where spend puts a HarnessDeployment on the budget ladder (pure).

The step is the highest one any window reached (its spend as a fraction of its limit
against `spec.budget.thresholds`), or `Stopped` when the provider itself refused with a
spend-limit error. The `harness.dev/lift-budget` annotation lifts the ladder until the
windows that were over a threshold reset; after that, spend decides again (and a reset
window starts from zero, which is how a step lifts by itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from harness_operator.api.budget import BudgetSpec
from harness_operator.api.status import BudgetStatus, BudgetStep, BudgetWindowStatus


@dataclass(frozen=True)
class WindowSpend:
    """Spend read for one window."""

    window: str
    limit_usd: float
    spent_usd: float | None
    """None: no cost data (counts as nothing spent)."""
    resets_at: datetime


@dataclass(frozen=True)
class SpendReading:
    """One read of spend from Prometheus."""

    at: datetime
    windows: tuple[WindowSpend, ...]
    burn_usd_per_hour: float | None
    spend_limit_errors: float
    """Provider spend-limit errors in the last minutes (any > 0 means exhausted)."""
    problem: str | None = None
    """Why spend could not be read (the step then stays as it was)."""


def _step_of(fraction: float, budget: BudgetSpec) -> BudgetStep:
    thresholds = budget.thresholds
    for bound, step in (
        (thresholds.stop, BudgetStep.STOPPED),
        (thresholds.abort_canary, BudgetStep.CANARY_ABORTED),
        (thresholds.block_promotion, BudgetStep.PROMOTION_BLOCKED),
        (thresholds.warn, BudgetStep.WARNING),
    ):
        if fraction >= bound:
            return step
    return BudgetStep.WITHIN


def _window_status(spend: WindowSpend, burn: float | None, now: datetime) -> BudgetWindowStatus:
    remaining = None if spend.spent_usd is None else spend.limit_usd - spend.spent_usd
    exhausts = None
    if remaining is not None and remaining > 0 and burn is not None and burn > 0:
        at = now + timedelta(hours=remaining / burn)
        exhausts = at if at < spend.resets_at else None
    elif remaining is not None and remaining <= 0:
        exhausts = now
    return BudgetWindowStatus(
        window=spend.window,
        limit_usd=spend.limit_usd,
        spent_usd=spend.spent_usd,
        remaining_usd=remaining,
        resets_at=spend.resets_at,
        exhausts_at=exhausts,
    )


def evaluate_ladder(
    budget: BudgetSpec,
    reading: SpendReading,
    previous: BudgetStatus | None,
    *,
    lift: bool = False,
) -> BudgetStatus:
    """The budget status after `reading`. `lift`: the lift annotation came with this tick."""
    now = reading.at
    if reading.problem is not None:
        step = previous.step if previous is not None else BudgetStep.WITHIN
        return BudgetStatus(
            step=step,
            reason=f"spend could not be read: {reading.problem}",
            since=previous.since if previous is not None else now,
            checked_at=now,
            lifted_until=previous.lifted_until if previous is not None else None,
            windows=list(previous.windows) if previous is not None else [],
        )
    step, reason = BudgetStep.WITHIN, "every window is below its warn threshold"
    for spend in reading.windows:
        fraction = (spend.spent_usd or 0.0) / spend.limit_usd
        candidate = _step_of(fraction, budget)
        if list(BudgetStep).index(candidate) > list(BudgetStep).index(step):
            step = candidate
            reason = (
                f"{spend.window}: ${spend.spent_usd or 0:.4f} of ${spend.limit_usd:g}"
                f" ({fraction:.0%})"
            )
    if reading.spend_limit_errors > 0:
        step, reason = BudgetStep.STOPPED, "the provider refused with a spend-limit error"
    lifted_until = previous.lifted_until if previous is not None else None
    if lift and step is not BudgetStep.WITHIN:
        over = [
            w.resets_at
            for w in reading.windows
            if (w.spent_usd or 0.0) / w.limit_usd >= budget.thresholds.warn
        ]
        lifted_until = max(over) if over else now + timedelta(minutes=5)
    if lifted_until is not None and now >= lifted_until:
        lifted_until = None
    if lifted_until is not None and step is not BudgetStep.WITHIN:
        reason = (
            f"lifted by harness.dev/lift-budget until {lifted_until:%Y-%m-%dT%H:%M:%SZ}; {reason}"
        )
        step = BudgetStep.WITHIN
    changed = previous is None or previous.step is not step
    return BudgetStatus(
        step=step,
        reason=reason,
        since=now if changed or previous is None else previous.since,
        checked_at=now,
        burn_usd_per_hour=reading.burn_usd_per_hour,
        lifted_until=lifted_until,
        windows=[_window_status(w, reading.burn_usd_per_hour, now) for w in reading.windows],
    )

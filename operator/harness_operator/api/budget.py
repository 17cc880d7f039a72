"""`spec.budget` of a HarnessDeployment: spend limits per window and what the operator does
as they are reached.

Spend is read from Prometheus, from the harness's cost series (or its tokens times
`spec.model.pricing`), over all tracks and revisions of the HarnessDeployment. As a window's
spend crosses each threshold (a fraction of its limit) the operator escalates:

1. `warn` — a `Budget` condition, a Warning Event and the `harness_budget_*` metrics;
2. `blockPromotion` — a release in flight freezes at its current step;
3. `abortCanary` — a release in flight is rolled back (routing first, the canary scaled
   down), and no new one starts;
4. `stop` — spending stops: the harness's kill switch is set (it answers new tasks with
   503 and stays ready; in-flight tasks finish), or the tracks scale to zero (pods drain
   first), per `stopAction`.

Each step lifts by itself when the window resets, or at once with the
`harness.dev/lift-budget` annotation (until the current windows reset). A provider's
spend-limit error (`error_class="spend_limit"`) counts as the budget being exhausted.
Budget edits never start a release: nothing of this reaches the pod template.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Final

from pydantic import AfterValidator, Field, model_validator

from harness_operator.api.types import (
    ApiModel,
    Duration,
    cel,
    list_map,
    model_rules,
    parse_duration,
    validations,
)

CALENDAR_WINDOWS: Final = ("hour", "day", "month")
WINDOW_PATTERN: Final = r"^(hour|day|month|([0-9]+(s|m|h)))$"
MIN_WINDOW_SECONDS: Final = 60.0


class StopAction(StrEnum):
    """How spending stops at the last step of the ladder."""

    KILL_SWITCH = "killSwitch"
    """Set the flag the harness reads (`HARNESS_KILL_SWITCH_FILE`): new tasks get 503 with
    Retry-After, pods stay ready, in-flight tasks finish, no pod restarts."""
    SCALE_TO_ZERO = "scaleToZero"
    """Scale both tracks to zero (their autoscalers are removed meanwhile); each pod drains
    its in-flight tasks within its termination grace period."""


def _check_window(text: str) -> str:
    if text in CALENDAR_WINDOWS:
        return text
    if not re.fullmatch(WINDOW_PATTERN, text) or parse_duration(text) < MIN_WINDOW_SECONDS:
        raise ValueError(
            f"budget.limits[].window {text!r}: use hour, day, month or a duration of at least"
            " 1m (e.g. 10m)"
        )
    return text


Window = Annotated[
    str,
    Field(
        min_length=1,
        max_length=16,
        pattern=WINDOW_PATTERN,
        json_schema_extra=validations(
            cel(
                "self in ['hour', 'day', 'month'] || duration(self) >= duration('1m')",
                "budget.limits[].window: a duration window must be at least 1m",
            )
        ),
    ),
    AfterValidator(_check_window),
]
Usd = Annotated[float, Field(gt=0, le=10_000_000, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)]


class BudgetLimit(ApiModel):
    """A spend limit over one window."""

    window: Window
    """`hour`, `day` or `month` (calendar windows in UTC: they reset at the top of the hour,
    at midnight and on the 1st), or a duration such as `10m` (windows aligned to multiples
    of it since the Unix epoch)."""
    usd: Usd
    """The limit, in US dollars."""


class BudgetThresholds(ApiModel):
    """Where each step of the ladder starts, as a fraction of a window's limit (the highest
    fraction over all windows counts). They must rise."""

    model_config = model_rules(
        cel(
            "self.warn < self.blockPromotion && self.blockPromotion < self.abortCanary"
            " && self.abortCanary <= self.stop",
            "budget.thresholds must rise: warn < blockPromotion < abortCanary <= stop",
        )
    )

    warn: Fraction = 0.5
    """Condition, Warning Event and metrics."""
    block_promotion: Fraction = 0.8
    """A release in flight freezes at its current step."""
    abort_canary: Fraction = 1.0
    """A release in flight is rolled back; no new one starts."""
    stop: Fraction = 1.2
    """Spending stops (`stopAction`)."""

    @model_validator(mode="after")
    def _rising(self) -> BudgetThresholds:
        if not self.warn < self.block_promotion < self.abort_canary <= self.stop:
            raise ValueError(
                "budget.thresholds must rise: warn < blockPromotion < abortCanary <= stop"
            )
        return self


class BudgetSpec(ApiModel):
    """Spend limits and the escalation ladder (see the module doc and docs/budgets.md)."""

    limits: Annotated[
        list[BudgetLimit],
        Field(min_length=1, max_length=8, json_schema_extra=list_map("window")),
    ]
    """Limits per window, any subset of hour, day, month and custom durations."""
    thresholds: BudgetThresholds = Field(default_factory=BudgetThresholds)
    """Where the steps of the ladder start."""
    stop_action: StopAction = StopAction.KILL_SWITCH
    """What the last step does: `killSwitch` or `scaleToZero`."""
    check_interval: Duration = "30s"
    """How often spend is read from Prometheus."""
    burn_window: Duration = "15m"
    """Range of the burn rate that projects when a window's budget runs out."""

    @model_validator(mode="after")
    def _unique(self) -> BudgetSpec:
        windows = [limit.window for limit in self.limits]
        if len(set(windows)) != len(windows):
            raise ValueError("budget.limits: each window at most once")
        return self

    @property
    def check_interval_seconds(self) -> float:
        return parse_duration(self.check_interval)

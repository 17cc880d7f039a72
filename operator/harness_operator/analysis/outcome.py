"""What an analysis produces: the outcome of one check (`CheckResult`), of one round of all
checks (`Round`), and their shape in `.status.lastAnalysis`.

Four outcomes, never collapsed: Pass and Fail are verdicts on the canary; Inconclusive means
not enough evidence yet (no data, too few samples); Error means the measurement itself
failed (Prometheus down, bad query) and is never read as a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

MAX_MESSAGE_LENGTH: Final = 1024
"""Longer messages (e.g. a Prometheus error quoting a whole query) are cut in `.status`."""


CONFIG_RESULT: Final = "config"
"""Name of the single result of `Round.config_error`."""


class Outcome(StrEnum):
    """Outcome of a check or a round."""

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


SEVERITY: Final[dict[Outcome, int]] = {
    Outcome.PASS: 0,
    Outcome.INCONCLUSIVE: 1,
    Outcome.ERROR: 2,
    Outcome.FAIL: 3,
}
"""Which outcome wins when several are combined: Fail, then Error, then Inconclusive."""


def worst(outcomes: list[Outcome] | tuple[Outcome, ...]) -> Outcome:
    """The combined outcome: Fail if any failed, else Error if any errored, else
    Inconclusive if any was inconclusive, else Pass (also for no outcomes at all)."""
    return max(outcomes, key=SEVERITY.__getitem__, default=Outcome.PASS)


def best(outcomes: list[Outcome] | tuple[Outcome, ...]) -> Outcome:
    """The outcome of bounds of which one holding is enough (`passWhen: any`): Pass if any
    passed, else the mildest of the others (Inconclusive before Error before Fail)."""
    return min(outcomes, key=SEVERITY.__getitem__, default=Outcome.PASS)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check in one round.

    `value` is the canary's value and `stable_value` the stable track's (only read for
    relative checks); both are None when unknown or not finite. When `relative` is true,
    `min` and `max` are the bounds on value ÷ stable_value (`relativeToStable`); otherwise
    they are the check's absolute bounds. The message always says what was compared.
    """

    name: str
    outcome: Outcome
    value: float | None
    stable_value: float | None
    min: float | None
    max: float | None
    relative: bool
    message: str

    def to_status(self) -> dict[str, Any]:
        """The entry of `.status.lastAnalysis.results[]`: camelCase, unknown numbers left
        out, the message cut to `MAX_MESSAGE_LENGTH` characters."""
        status: dict[str, Any] = {"name": self.name, "outcome": str(self.outcome)}
        for key, number in (
            ("value", self.value),
            ("stableValue", self.stable_value),
            ("min", self.min),
            ("max", self.max),
        ):
            if number is not None and math.isfinite(number):
                status[key] = float(number)
        status["relative"] = self.relative
        status["message"] = _cut(self.message)
        return status


@dataclass(frozen=True)
class Round:
    """All checks of an analysis, evaluated once at `at`."""

    at: datetime
    results: tuple[CheckResult, ...]

    @classmethod
    def config_error(cls, at: datetime, message: str) -> Round:
        """A round that could not start because the analysis is misconfigured (e.g. a
        missing template): one Error result named `config` carrying `message`. It counts
        toward `errorLimit` like any other error."""
        error = CheckResult(
            name=CONFIG_RESULT,
            outcome=Outcome.ERROR,
            value=None,
            stable_value=None,
            min=None,
            max=None,
            relative=False,
            message=message,
        )
        return cls(at=at, results=(error,))

    @property
    def outcome(self) -> Outcome:
        """Fail if any check failed, else Error if any errored, else Inconclusive if any
        was inconclusive, else Pass."""
        return worst(tuple(r.outcome for r in self.results))

    @property
    def has_error(self) -> bool:
        """Whether any check could not be evaluated (counts toward `errorLimit`)."""
        return any(r.outcome is Outcome.ERROR for r in self.results)

    def result(self, name: str) -> CheckResult | None:
        """The result of the check called `name`, if it ran."""
        return next((r for r in self.results if r.name == name), None)

    def to_status(self) -> dict[str, Any]:
        """`.status.lastAnalysis`: `{time, outcome, results}`, time in RFC 3339 UTC."""
        return {
            "time": rfc3339(self.at),
            "outcome": str(self.outcome),
            "results": [r.to_status() for r in self.results],
        }


def rfc3339(at: datetime) -> str:
    """`at` in RFC 3339 UTC (`2026-01-02T03:04:05Z`, with microseconds when there are any,
    so the time of a round is never rounded); naive times count as UTC."""
    utc = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def _cut(message: str) -> str:
    if len(message) <= MAX_MESSAGE_LENGTH:
        return message
    return message[: MAX_MESSAGE_LENGTH - 3] + "..."

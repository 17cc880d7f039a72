"""What a credential and model check concluded (pure): the verdict, how the release engine
treats it, and how SDK errors map onto it.

Only a provider's clear refusal fails a check: 401 (the credential), 403 (no access to the
model), 404 (no such model), 400 (the request was refused). Rate limits, overload, spend
limits, server errors, timeouts and unreachable endpoints say nothing about the credential:
they are inconclusive and retried with backoff, never counted as a pass or a fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final


class PreflightOutcome(StrEnum):
    PASSED = "Passed"
    """The provider accepted the credential and knows the model."""
    FAILED = "Failed"
    """The provider refused: the release is held at weight 0."""
    INCONCLUSIVE = "Inconclusive"
    """No answer that says anything (429, 529, 5xx, timeout): held, retried with backoff."""
    CHECKING = "Checking"
    """A check is under way: held until it answers (its completion wakes the loop)."""
    UNVERIFIED = "Unverified"
    """No check applies (disabled, workload identity, no free call): not held."""


HOLDS: Final = frozenset(
    {PreflightOutcome.FAILED, PreflightOutcome.INCONCLUSIVE, PreflightOutcome.CHECKING}
)
"""Outcomes that keep a new revision away from traffic."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of the check of one (provider, settings, model, credential)."""

    outcome: PreflightOutcome
    reason: str
    """CamelCase, for the `CredentialsValid` condition and Events."""
    message: str
    """What was checked and what the provider said; never the credential."""
    method: str = ""
    """The SDK call made (`models.retrieve`, `messages.count_tokens`, `messages.create`)."""
    status_code: int | None = None
    retry_after: float | None = None
    """Seconds the provider asked to wait (`retry-after`), if it did."""
    latency_seconds: float | None = None
    retry_in: float | None = field(default=None, compare=False)
    """Seconds until the next attempt of an inconclusive check (set by the service)."""

    @property
    def holds(self) -> bool:
        """Whether a revision with this verdict must not get traffic (or report Ready)."""
        return self.outcome in HOLDS

    @property
    def condition_status(self) -> str:
        """`CredentialsValid`: True when passed, False when refused, else Unknown."""
        if self.outcome is PreflightOutcome.PASSED:
            return "True"
        return "False" if self.outcome is PreflightOutcome.FAILED else "Unknown"

    def with_retry(self, seconds: float | None) -> Verdict:
        return replace(self, retry_in=seconds)


def unverified(reason: str, message: str) -> Verdict:
    return Verdict(PreflightOutcome.UNVERIFIED, reason, message)


CHECKING: Final = Verdict(
    PreflightOutcome.CHECKING, "Checking", "the credential and model are being checked"
)

# (status, reason, outcome) for HTTP answers; 529 and the spend limit come before the
# generic 429 and 5xx rows.
_BY_STATUS: Final[tuple[tuple[int, str, PreflightOutcome], ...]] = (
    (401, "InvalidCredentials", PreflightOutcome.FAILED),
    (403, "PermissionDenied", PreflightOutcome.FAILED),
    (404, "ModelNotFound", PreflightOutcome.FAILED),
    (400, "Rejected", PreflightOutcome.FAILED),
    (402, "SpendLimit", PreflightOutcome.INCONCLUSIVE),
    (408, "Timeout", PreflightOutcome.INCONCLUSIVE),
    (429, "RateLimited", PreflightOutcome.INCONCLUSIVE),
    (529, "Overloaded", PreflightOutcome.INCONCLUSIVE),
)
SPEND_LIMIT_CODES: Final = frozenset(
    {"enforced_spend_limit_reached", "contract_spend_limit_reached", "ramp_limit_exceeded"}
)


def from_status(
    status: int, error_type: str, detail: str, *, error_code: str | None, method: str
) -> Verdict:
    """The verdict for an HTTP error answer."""
    reason, outcome = "ProviderError", PreflightOutcome.INCONCLUSIVE
    if error_code in SPEND_LIMIT_CODES:
        reason = "SpendLimit"
    else:
        for code, row_reason, row_outcome in _BY_STATUS:
            if status == code:
                reason, outcome = row_reason, row_outcome
                break
    said = f"{status} {error_type}".strip()
    if detail:
        said += f": {detail}"
    return Verdict(outcome, reason, f"{method}: the provider answered {said}", method, status)

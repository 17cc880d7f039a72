"""What went wrong in a model call, and whether to try again.

Owns the `error_class` label (`classify`), the retry policy (`is_retryable`,
`retry_delay`) and `ProviderError`, the failure the agent loop hands to the HTTP layer.
The SDK client runs with `max_retries=0`, so this policy is the only one and every retry
is counted.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Final

from anthropic import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ContractSpendLimitReachedError,
    EnforcedSpendLimitReachedError,
    LinkedOrganizationSpendLimitReachedError,
)

ERROR_CLASSES: Final = (
    "rate_limit",
    "overloaded",
    "server_error",
    "timeout",
    "connection",
    "auth",
    "permission",
    "bad_request",
    "not_found",
    "spend_limit",
    "other",
)

BACKOFF_BASE_SECONDS: Final = 0.25
BACKOFF_CAP_SECONDS: Final = 8.0

# A spend cap is reached until the provider's billing period resets: retrying is useless.
_SPEND_LIMIT_ERRORS: Final = (
    EnforcedSpendLimitReachedError,
    ContractSpendLimitReachedError,
    LinkedOrganizationSpendLimitReachedError,
)
_SPEND_LIMIT_CODES: Final = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
    }
)

# An `error` event inside a stream is raised with the stream's HTTP status (200), so the
# SDK's exception class is the generic APIStatusError; `error.type` tells what it was.
_STATUS_BY_TYPE: Final = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "timeout_error": 408,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class ProviderError(Exception):
    """A model call failed for good (not retryable, or out of retries)."""

    def __init__(self, error_class: str, retry_after: float | None, detail: str) -> None:
        super().__init__(detail)
        self.error_class = error_class
        self.retry_after = retry_after


def effective_status(exc: APIStatusError) -> int:
    """The HTTP status the error stands for, also for errors raised mid-stream."""
    if exc.status_code >= 400:
        return exc.status_code
    return _STATUS_BY_TYPE.get(str(exc.type or ""), 500)


def classify(exc: BaseException) -> str:
    """The `error_class` of an exception raised by a model call."""
    # Subclass order matters: APITimeoutError is an APIConnectionError; the spend-limit
    # errors are RateLimitErrors (429) but not transient; 529 is an InternalServerError.
    if isinstance(exc, APITimeoutError):
        return "timeout"
    if isinstance(exc, APIConnectionError):
        return "connection"
    if isinstance(exc, _SPEND_LIMIT_ERRORS):
        return "spend_limit"
    if isinstance(exc, APIStatusError):
        if exc.error_code in _SPEND_LIMIT_CODES:
            return "spend_limit"
        return _class_of_status(effective_status(exc))
    if type(exc).__module__.startswith("google.auth"):
        return "auth"  # Vertex: Google credentials could not be loaded or refreshed
    return "other"


def _class_of_status(status: int) -> str:
    if status == 529:
        return "overloaded"
    if status == 429:
        return "rate_limit"
    if status in (408, 504):
        return "timeout"
    if status >= 500:
        return "server_error"
    return {
        400: "bad_request",
        401: "auth",
        402: "spend_limit",
        403: "permission",
        404: "not_found",
        413: "bad_request",
        422: "bad_request",
    }.get(status, "other")


def is_retryable(exc: BaseException) -> bool:
    """Whether a model call that raised `exc` is worth repeating (the SDK's own policy,
    minus spend limits)."""
    if classify(exc) == "spend_limit":
        return False
    if isinstance(exc, APIConnectionError):
        return True
    if not isinstance(exc, APIStatusError):
        return False
    should_retry = exc.response.headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    status = effective_status(exc)
    return status in (408, 409, 429) or status >= 500


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (`retry-after-ms`, `retry-after`), if any."""
    if not isinstance(exc, APIStatusError):
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            seconds = float(raw) * scale
        except ValueError:
            parsed = email.utils.parsedate_tz(raw) if name == "retry-after" else None
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if seconds > 0:
            return seconds
    return None


def backoff(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
    return rng.uniform(0.0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt))


def retry_delay(exc: BaseException, attempt: int, rng: random.Random) -> float:
    """How long to wait before retry number `attempt + 1`."""
    hinted = retry_after(exc)
    return hinted if hinted is not None else backoff(attempt, rng)

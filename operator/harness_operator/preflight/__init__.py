"""Credential and model preflight: before a revision gets any traffic (and before a first
deploy reports Ready), the operator checks the credential and the model through the
anthropic SDK with the cheapest call the provider allows (`calls`), caches the verdict per
credential, bounds and backs off the checks (`service`), and hands the release engine a
`Verdict` (`verdict`): Passed, Failed (held at weight 0), Inconclusive or Checking (held,
retried), or Unverified (no check applies).

The credential is read from its Secret in memory only; it never reaches logs, Events,
status, metrics or exception messages.
"""

from harness_operator.preflight.calls import CheckRequest, call_for, run_check
from harness_operator.preflight.service import PreflightService, backoff, cache_key
from harness_operator.preflight.verdict import (
    CHECKING,
    HOLDS,
    PreflightOutcome,
    Verdict,
    unverified,
)

__all__ = [
    "CHECKING",
    "HOLDS",
    "CheckRequest",
    "PreflightOutcome",
    "PreflightService",
    "Verdict",
    "backoff",
    "cache_key",
    "call_for",
    "run_check",
    "unverified",
]

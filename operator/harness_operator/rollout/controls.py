"""Manual controls: annotations that act on a release without editing the spec, so GitOps
tools that own the spec do not revert them.

Consumption is crash-safe and idempotent: the engine acts on an annotation only when
`status.consumedControls` does not already hold its current value, records the value there,
and asks the caller to remove the annotation once that status is saved. If the operator
dies in between, the annotation is still there with a recorded value and is not acted on
again (only removed). Once the annotation is gone its record is dropped, so the same value
works again next time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from harness_operator import GROUP

CONTROL_PROMOTE: Final = f"{GROUP}/promote"
"""`full`: skip the remaining steps and analysis and promote now. Any other value: end the
current step's wait now (one step; a blue/green or A/B test counts as one step)."""
CONTROL_ABORT: Final = f"{GROUP}/abort"
"""Roll the release back now (reason `Aborted`); the value, if any, is kept in the message."""
CONTROL_RETRY: Final = f"{GROUP}/retry"
"""After a rollback, release the same revision again."""
CONTROL_PAUSE: Final = f"{GROUP}/pause"
"""Hold the release at its current weight; analysis, rollback and deadlines keep running."""
CONTROL_RESUME: Final = f"{GROUP}/resume"
"""Continue a paused release; the current step's wait starts over."""
CONTROL_LIFT_BUDGET: Final = f"{GROUP}/lift-budget"
"""Lift the budget ladder now, until the windows over a threshold reset."""
CONTROL_RUN_NOW: Final = f"{GROUP}/run-now"
"""Cron harnesses: start a run now, of the new revision while a release judges its runs,
else of stable (each new value starts one run)."""
CONTROL_KEYS: Final = (
    CONTROL_ABORT,
    CONTROL_RETRY,
    CONTROL_PAUSE,
    CONTROL_RESUME,
    CONTROL_PROMOTE,
    CONTROL_LIFT_BUDGET,
    CONTROL_RUN_NOW,
)
"""Every control annotation, in the order they are applied when several arrive together."""
PROMOTE_FULL: Final = "full"


@dataclass(frozen=True)
class Controls:
    """The control annotations of one tick."""

    pending: Mapping[str, str]
    """Annotations to act on now (key to value), not acted on before."""
    record: Mapping[str, str]
    """The new `status.consumedControls`: every control annotation present, with its value."""
    consumed: tuple[str, ...]
    """Annotation keys the caller removes after saving the status."""


def read_controls(present: Mapping[str, str], consumed: Mapping[str, str] | None) -> Controls:
    """Split the control annotations `present` on the object into those to act on and those
    already acted on; forget records of annotations that are gone."""
    seen = {key: present[key] for key in CONTROL_KEYS if key in present}
    before = consumed or {}
    pending = {key: value for key, value in seen.items() if before.get(key) != value}
    return Controls(pending=pending, record=seen, consumed=tuple(sorted(seen)))


def is_full_promotion(value: str) -> bool:
    """Whether a `harness.dev/promote` value asks to skip everything: `full`, or
    `full@<nonce>` as kubectl-harness writes it (the nonce makes each request distinct)."""
    return value.strip().lower().partition("@")[0] == PROMOTE_FULL

"""The release engine: a pure state machine over `HarnessDeploymentStatus`.

The controller calls `advance(Inputs(...))` at every tick of a HarnessDeployment (every
`analysis.checkInterval` during a release, and on every change) and carries out the
returned `Plan`: render `plan.state`, apply routing first when `plan.route_first`, save
`plan.status`, remove the `plan.consumed` annotations, post `plan.notes`, and evaluate the
analysis checks at the next tick when `plan.analyse`. Nothing here does I/O or reads the
clock, so a release is tested tick by tick with a fake clock and canned analysis rounds.

Must not import the controller, handlers, kube or traffic layers (they import this).
"""

from harness_operator.rollout.controls import (
    CONTROL_ABORT,
    CONTROL_KEYS,
    CONTROL_PAUSE,
    CONTROL_PROMOTE,
    CONTROL_RESUME,
    CONTROL_RETRY,
    PROMOTE_FULL,
)
from harness_operator.rollout.machine import (
    REASON_ABORTED,
    REASON_PROGRESS_DEADLINE,
    advance,
    should_analyse,
)
from harness_operator.rollout.model import (
    NORMAL,
    WARNING,
    AnalysisRound,
    Inputs,
    Note,
    Plan,
    WorkloadState,
)
from harness_operator.rollout.outcome import canary_replicas, release_state
from harness_operator.rollout.rounds import REASON_ANALYSIS_ERRORS, REASON_ANALYSIS_FAILED

__all__ = [
    "CONTROL_ABORT",
    "CONTROL_KEYS",
    "CONTROL_PAUSE",
    "CONTROL_PROMOTE",
    "CONTROL_RESUME",
    "CONTROL_RETRY",
    "NORMAL",
    "PROMOTE_FULL",
    "REASON_ABORTED",
    "REASON_ANALYSIS_ERRORS",
    "REASON_ANALYSIS_FAILED",
    "REASON_PROGRESS_DEADLINE",
    "WARNING",
    "AnalysisRound",
    "Inputs",
    "Note",
    "Plan",
    "WorkloadState",
    "advance",
    "canary_replicas",
    "release_state",
    "should_analyse",
]

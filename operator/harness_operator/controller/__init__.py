"""Reconciliation: observe a HarnessDeployment's world through `kube`, decide with the pure
layers (`render`, `status`), apply what drifted. No kopf here; `handlers` drives it."""

from harness_operator.controller.reconciler import Note, Outcome, Reconciler
from harness_operator.controller.status import CONDITION_DEGRADED, Problem

__all__ = ["CONDITION_DEGRADED", "Note", "Outcome", "Problem", "Reconciler"]

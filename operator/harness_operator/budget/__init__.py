"""Spend budgets: which windows are current and when they reset (`windows`), how much was
spent in them, read from Prometheus (`spend`), and where that puts the HarnessDeployment on
the escalation ladder (`ladder`, pure). The release engine applies the ladder's step."""

from harness_operator.budget.ladder import SpendReading, WindowSpend, evaluate_ladder
from harness_operator.budget.windows import window_bounds

__all__ = ["SpendReading", "WindowSpend", "evaluate_ladder", "window_bounds"]

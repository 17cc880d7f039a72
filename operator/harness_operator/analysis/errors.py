"""Errors of the analysis layer that are about configuration, not about metrics."""

from __future__ import annotations


class AnalysisConfigError(ValueError):
    """The analysis cannot be evaluated as configured: a missing HarnessAnalysisTemplate,
    clashing check names, an unknown query placeholder. The message names the culprit and
    is meant for a condition or an Event."""

"""Metric analysis of canary releases: render the checks' PromQL for each track, ask a
metrics provider, and turn the answers into Pass / Fail / Inconclusive / Error.

Pure apart from the provider: the controller resolves the checks (with the namespace's
HarnessAnalysisTemplates) and evaluates them every `checkInterval`; the release engine
stores `Round.to_status()` and counts rounds against `failureLimit`/`errorLimit`.

    provider = provider_for(spec.analysis, default_address())
    checks = resolve_checks(spec.analysis, templates)
    round_ = evaluate(checks, spec.analysis, target, provider, now)

Modules: `queries` (built-in PromQL, placeholders), `checks` (evaluation), `outcome`
(result types), `providers` (Prometheus over HTTP).
"""

from harness_operator.analysis.checks import evaluate, resolve_checks
from harness_operator.analysis.errors import AnalysisConfigError
from harness_operator.analysis.outcome import CheckResult, Outcome, Round
from harness_operator.analysis.providers import (
    PROMETHEUS_URL_ENV,
    MetricsProvider,
    PrometheusProvider,
    ProviderUnavailableError,
    QueryError,
    QueryResult,
    default_address,
    provider_for,
)
from harness_operator.analysis.queries import (
    BUILTIN_GUARDS,
    BUILTIN_QUERIES,
    BUILTIN_UNITS,
    Target,
    render_query,
)

__all__ = [
    "BUILTIN_GUARDS",
    "BUILTIN_QUERIES",
    "BUILTIN_UNITS",
    "PROMETHEUS_URL_ENV",
    "AnalysisConfigError",
    "CheckResult",
    "MetricsProvider",
    "Outcome",
    "PrometheusProvider",
    "ProviderUnavailableError",
    "QueryError",
    "QueryResult",
    "Round",
    "Target",
    "default_address",
    "evaluate",
    "provider_for",
    "render_query",
    "resolve_checks",
]

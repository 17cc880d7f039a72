"""Metrics backends the checks can query (`base` is the contract, `prometheus` the one
implementation)."""

from harness_operator.analysis.providers.base import (
    MetricsProvider,
    ProviderUnavailableError,
    QueryError,
    QueryResult,
)
from harness_operator.analysis.providers.prometheus import (
    PROMETHEUS_URL_ENV,
    PrometheusProvider,
    SecretReader,
    default_address,
    provider_for,
    redact,
    redact_url,
    secret_data,
)

__all__ = [
    "PROMETHEUS_URL_ENV",
    "MetricsProvider",
    "PrometheusProvider",
    "ProviderUnavailableError",
    "QueryError",
    "QueryResult",
    "SecretReader",
    "default_address",
    "provider_for",
    "redact",
    "redact_url",
    "secret_data",
]

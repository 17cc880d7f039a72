"""The contract between the checks and a metrics backend: one instant query in, one number
(or nothing) out. Backends raise `QueryError` for anything that is not an answer, and the
checks turn it into an Error outcome, never into a pass."""

from __future__ import annotations

from typing import Protocol, TypeAlias

QueryResult: TypeAlias = float | None
"""The value of an instant query: a float (NaN and infinities included, as the backend sent
them), or None when the result was empty (no series matched)."""


class QueryError(Exception):
    """The query produced no usable answer: bad PromQL, an HTTP error, a result that is not
    a single number (a matrix, several series), an unreadable response."""


class ProviderUnavailableError(QueryError):
    """The backend did not answer at all (connection refused, DNS failure, timeout). Within
    one round of checks, the remaining queries are not sent after this."""


class MetricsProvider(Protocol):
    """Something that answers instant PromQL queries."""

    def query(self, promql: str) -> QueryResult:
        """The value of `promql` now. Raises `QueryError` when there is no usable answer."""
        ...

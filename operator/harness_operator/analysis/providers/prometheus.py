"""Prometheus as a metrics backend: instant queries over its HTTP API (`GET /api/v1/query`)
with the standard library's urllib, and the choice of server for a HarnessDeployment.

Works with anything that speaks the Prometheus query API (Thanos, Mimir, VictoriaMetrics);
a path prefix in the address is kept. Environment proxy settings are ignored: the server is
in or next to the cluster (or on 127.0.0.1 in tests), never behind an outbound proxy.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

from harness_operator import __version__
from harness_operator.analysis.errors import AnalysisConfigError
from harness_operator.analysis.providers.base import (
    ProviderUnavailableError,
    QueryError,
    QueryResult,
)
from harness_operator.api.analysis import AnalysisSpec

PROMETHEUS_URL_ENV: Final = "HARNESS_PROMETHEUS_URL"
"""Environment variable with the operator-wide default Prometheus address."""
MAX_RESPONSE_BYTES: Final = 1 << 20
"""Larger answers are refused: a check's query returns one number, not a dump."""
DEFAULT_TIMEOUT_SECONDS: Final = 5.0


class PrometheusProvider:
    """Instant queries against one Prometheus server."""

    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        parsed = urllib.parse.urlsplit(address)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"Prometheus address {address!r} must be an http(s):// URL")
        if timeout <= 0:
            raise ValueError(f"Prometheus timeout must be positive, not {timeout}")
        self.address = address.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"PrometheusProvider({self.address!r}, timeout={self.timeout:g})"

    def query(self, promql: str) -> QueryResult:
        """The value of `promql` now: a scalar, or the one sample of an instant vector
        (None when the vector is empty). Raises `ProviderUnavailableError` when the server does
        not answer within the timeout, `QueryError` for any other unusable answer."""
        params = urllib.parse.urlencode({"query": promql, "timeout": f"{self.timeout:g}"})
        request = urllib.request.Request(
            f"{self.address}/api/v1/query?{params}",
            headers={"Accept": "application/json", "User-Agent": f"harness-operator/{__version__}"},
        )
        return _value(self._get(request))

    def is_online(self) -> bool:
        """Whether the server answers a trivial query (`vector(1)`) correctly."""
        try:
            return self.query("vector(1)") == 1.0
        except QueryError:
            return False

    def _get(self, request: urllib.request.Request) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = _read(response, deadline)
        except urllib.error.HTTPError as e:
            # Prometheus answers 400 (bad_data), 422 (execution) and 503 (timeout, canceled)
            # with a JSON body that says what went wrong.
            detail = _error_detail(_read_quietly(e)) or e.reason
            raise QueryError(f"HTTP {e.code} from {self.address}: {detail}") from None
        except urllib.error.URLError as e:
            raise self._unavailable(e.reason) from None
        except (TimeoutError, ConnectionError) as e:
            raise self._unavailable(e) from None
        except (http.client.HTTPException, OSError) as e:
            raise QueryError(f"bad response from {self.address}: {e!r}") from None
        try:
            parsed = json.loads(body)
        except ValueError:
            raise QueryError(f"response from {self.address} is not JSON: {body[:80]!r}") from None
        if not isinstance(parsed, dict):
            raise QueryError(f"response from {self.address} is not a JSON object")
        if parsed.get("status") != "success":
            raise QueryError(_error_detail(body) or f"query failed: {body[:200]!r}")
        return parsed

    def _unavailable(self, reason: object) -> ProviderUnavailableError:
        if isinstance(reason, TimeoutError):
            return ProviderUnavailableError(
                f"no answer from {self.address} within {self.timeout:g}s"
            )
        return ProviderUnavailableError(f"cannot reach {self.address}: {reason}")


def _read(response: http.client.HTTPResponse, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise QueryError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_quietly(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read(MAX_RESPONSE_BYTES)
    except (OSError, http.client.HTTPException):
        return b""


def _error_detail(body: bytes) -> str | None:
    """`errorType: error` from a Prometheus error response, if it is one."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or "error" not in parsed:
        return None
    return f"{parsed.get('errorType', 'error')}: {parsed['error']}"


def _value(response: dict[str, Any]) -> QueryResult:
    data = response.get("data")
    if not isinstance(data, dict):
        raise QueryError("response has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _number(result[1])
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            labels = [_labels(s) for s in result[:3]]
            raise QueryError(
                f"query returned {len(result)} series, a check needs exactly one number;"
                f" aggregate them, e.g. with sum(...) (series: {', '.join(labels)}"
                f"{', ...' if len(result) > 3 else ''})"
            )
        sample = result[0]
        if not isinstance(sample, dict) or not isinstance(sample.get("value"), list):
            raise QueryError(f"malformed vector sample {sample!r}")
        if len(sample["value"]) != 2:
            raise QueryError(f"malformed vector sample {sample!r}")
        return _number(sample["value"][1])
    if kind == "matrix":
        raise QueryError(
            "query returned a range vector (matrix), a check needs one number; use an instant"
            " expression, e.g. rate(x[1m]) instead of x[1m]"
        )
    raise QueryError(f"query returned a {kind or 'missing'} result, a check needs one number")


def _number(raw: object) -> float:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise QueryError(f"sample value {raw!r} is not a number")
    try:
        return float(raw)  # Prometheus sends "NaN", "+Inf" and "-Inf" as such
    except ValueError:
        raise QueryError(f"sample value {raw!r} is not a number") from None


def _labels(sample: object) -> str:
    metric = sample.get("metric", {}) if isinstance(sample, dict) else {}
    if not isinstance(metric, dict):
        return "{}"
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


# --- choosing the server ---------------------------------------------------------------


def default_address() -> str | None:
    """The operator-wide default address (`HARNESS_PROMETHEUS_URL`), if set."""
    return os.environ.get(PROMETHEUS_URL_ENV) or None


def provider_for(analysis: AnalysisSpec, default: str | None = None) -> PrometheusProvider:
    """The provider for a HarnessDeployment's analysis: `analysis.prometheus.address`, else
    `default` (normally `default_address()`). Raises `AnalysisConfigError` with neither."""
    settings = analysis.prometheus
    address = (settings.address if settings else None) or default
    if not address:
        raise AnalysisConfigError(
            "analysis.prometheus.address is not set and the operator has no default"
            f" ({PROMETHEUS_URL_ENV})"
        )
    timeout = float(settings.timeout_seconds) if settings else DEFAULT_TIMEOUT_SECONDS
    try:
        return PrometheusProvider(address, timeout)
    except ValueError as e:
        raise AnalysisConfigError(str(e)) from None

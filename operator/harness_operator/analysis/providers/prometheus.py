"""Prometheus as a metrics backend: instant queries over its HTTP API (`GET /api/v1/query`)
with the standard library's urllib, and the choice of server for a HarnessDeployment.

Works with anything that speaks the Prometheus query API (Thanos, Mimir, VictoriaMetrics);
a path prefix in the address is kept. Environment proxy settings are ignored: the server is
in or next to the cluster (or on 127.0.0.1 in tests), never behind an outbound proxy.

Credentials (a bearer token or basic auth from a Secret, or `user:password@` in the
address) go into an `Authorization` header that is never sent on a redirect, and never into
a message: every message this module produces, and the provider's `repr`, show the address
without its userinfo, and anything that looks like a credential in text a server sends back
(a URL with userinfo, an `Authorization` value, the secret values themselves) is masked.
Those messages end up in `.status`, Events and logs, which more people read than Secrets.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

from harness_operator import __version__
from harness_operator.analysis.errors import AnalysisConfigError
from harness_operator.analysis.providers.base import (
    ProviderUnavailableError,
    QueryError,
    QueryResult,
)
from harness_operator.api.analysis import AnalysisSpec, PrometheusSecretKey, PrometheusSpec

PROMETHEUS_URL_ENV: Final = "HARNESS_PROMETHEUS_URL"
"""Environment variable with the operator-wide default Prometheus address."""
MAX_RESPONSE_BYTES: Final = 1 << 20
"""Larger answers are refused: a check's query returns one number, not a dump."""
DEFAULT_TIMEOUT_SECONDS: Final = 5.0
MASK: Final = "***"
"""What a credential is replaced with in messages."""

SecretReader: TypeAlias = Callable[[str], Mapping[str, bytes] | None]
"""Reads a Secret of the HarnessDeployment's namespace by name: its decoded `data`, or None
when the Secret does not exist (see `secret_data`)."""

# scheme://<userinfo>@ in free text: greedy up to the last "@" of the authority.
_URL_USERINFO: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
# The same in a configured address: up to its last "@" at all, so that a password with an
# unescaped "/" (which makes urlsplit see a different host) is still masked whole.
_ADDRESS_USERINFO: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^\s]*@")
# RFC 6750 b64token: what a bearer token may contain to travel in a header.
_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_MIN_MASKED_LENGTH: Final = 3
"""Shorter secret values are not searched for in text (masking every "a" would garble the
message). The Authorization value we send is always masked, and so is any URL userinfo."""


def redact_url(address: str) -> str:
    """A configured `address` with its userinfo (`user:password@`, everything up to its last
    `@`) replaced by `***@`."""
    return _ADDRESS_USERINFO.sub(rf"\g<1>{MASK}@", address)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with every one of `secrets` and the userinfo of every URL in it masked."""
    for secret in secrets:  # first: a URL's masking could cut a known secret in two
        text = text.replace(secret, MASK)
    return _URL_USERINFO.sub(rf"\g<1>{MASK}@", text)


class PrometheusProvider:
    """Instant queries against one Prometheus server.

    `address` is the address as shown (userinfo masked); the one requests go to is private.
    Credentials: `bearer_token`, or `basic_auth` (user name, password), else the address'
    userinfo as basic auth. TLS: `ca_pem` (a PEM bundle, then the only trusted roots), or
    `insecure_skip_verify`, else the system trust store. Every error is a `QueryError` (or
    `ProviderUnavailableError`) whose message carries no credential; invalid settings raise
    `ValueError`, again without one."""

    def __init__(
        self,
        address: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        *,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_pem: bytes | None = None,
        insecure_skip_verify: bool = False,
    ) -> None:
        shown = redact_url(address)
        try:
            parsed = urllib.parse.urlsplit(address)
            port_ok = _port_ok(parsed)
        except ValueError:
            raise ValueError(f"Prometheus address {shown!r} is not a valid URL") from None
        hostport = parsed.netloc.rpartition("@")[2]
        if parsed.scheme not in ("http", "https") or not hostport or not parsed.hostname:
            raise ValueError(f"Prometheus address {shown!r} must be an http(s):// URL")
        if not port_ok:
            raise ValueError(f"Prometheus address {shown!r} has an invalid port")
        if parsed.query or parsed.fragment:
            raise ValueError(f"Prometheus address {shown!r} must not have a query or fragment")
        if timeout <= 0:
            raise ValueError(f"Prometheus timeout must be positive, not {timeout}")
        if bearer_token is not None and basic_auth is not None:
            raise ValueError("Prometheus credentials: set a bearer token or basic auth, not both")

        path = parsed.path.rstrip("/")
        self._base = f"{parsed.scheme}://{hostport}{path}"
        userinfo = parsed.netloc.rpartition("@")[0] if "@" in parsed.netloc else None
        self.address = redact_url(self._base if userinfo is None else address.rstrip("/"))
        self.timeout = timeout

        secrets: list[str] = []
        if "@" in address:
            secrets.append(address.partition("://")[2].rpartition("@")[0])
        if userinfo is not None:
            user, _, password = userinfo.partition(":")
            secrets += [userinfo, password, urllib.parse.unquote(password)]
            if bearer_token is None and basic_auth is None:
                basic_auth = (urllib.parse.unquote(user), urllib.parse.unquote(password))
        self._authorization: str | None = None
        self.auth_kind: str | None = None
        """"bearer", "basic" or None: which credentials the requests carry."""
        if bearer_token is not None:
            if not _TOKEN.fullmatch(bearer_token):
                raise ValueError(
                    "the Prometheus bearer token is empty or contains characters an HTTP"
                    " header cannot carry"
                )
            self._authorization = f"Bearer {bearer_token}"
            self.auth_kind = "bearer"
            secrets.append(bearer_token)
        elif basic_auth is not None:
            user, password = basic_auth
            if ":" in user:
                raise ValueError("the Prometheus basic auth user name must not contain ':'")
            blob = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._authorization = f"Basic {blob}"
            self.auth_kind = "basic"
            secrets += [password, urllib.parse.quote(password, safe="")]
        masked = {s for s in secrets if len(s) >= _MIN_MASKED_LENGTH}
        if self._authorization is not None:
            masked.add(self._authorization.partition(" ")[2])  # the token or the base64 blob
        self._secrets = tuple(sorted(masked, key=len, reverse=True))

        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        context = _tls_context(ca_pem, insecure_skip_verify)
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        auth = f", auth={self.auth_kind!r}" if self.auth_kind else ""
        return f"PrometheusProvider({self.address!r}, timeout={self.timeout:g}{auth})"

    def redact(self, text: str) -> str:
        """`text` without this provider's credentials (nor any URL userinfo)."""
        return redact(text, self._secrets)

    def query(self, promql: str) -> QueryResult:
        """The value of `promql` now: a scalar, or the one sample of an instant vector
        (None when the vector is empty). Raises `ProviderUnavailableError` when the server does
        not answer within the timeout, `QueryError` for any other unusable answer."""
        try:
            return self._query(promql)
        except ProviderUnavailableError as e:
            raise ProviderUnavailableError(self.redact(str(e))) from None
        except QueryError as e:
            raise QueryError(self.redact(str(e))) from None
        except Exception as e:  # never let a library's message carry a credential out
            detail = self.redact(f"{type(e).__name__}: {e}")
            raise QueryError(f"query to {self.address} failed: {detail}") from None

    def is_online(self) -> bool:
        """Whether the server answers a trivial query (`vector(1)`) correctly."""
        try:
            return self.query("vector(1)") == 1.0
        except QueryError:
            return False

    def _query(self, promql: str) -> QueryResult:
        params = urllib.parse.urlencode({"query": promql, "timeout": f"{self.timeout:g}"})
        request = urllib.request.Request(
            f"{self._base}/api/v1/query?{params}",
            headers={"Accept": "application/json", "User-Agent": f"harness-operator/{__version__}"},
        )
        if self._authorization is not None:
            # Unredirected: urllib copies ordinary headers to wherever a redirect points.
            request.add_unredirected_header("Authorization", self._authorization)
        return _value(self._get(request))

    def _get(self, request: urllib.request.Request) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = _read(response, deadline)
        except urllib.error.HTTPError as e:
            # Prometheus answers 400 (bad_data), 422 (execution) and 503 (timeout, canceled)
            # with a JSON body that says what went wrong.
            detail = _error_detail(_read_quietly(e)) or e.reason
            hint = " (check analysis.prometheus.auth)" if e.code in (401, 403) else ""
            raise QueryError(f"HTTP {e.code} from {self.address}: {detail}{hint}") from None
        except urllib.error.URLError as e:
            raise self._unavailable(e.reason) from None
        except (TimeoutError, ConnectionError) as e:
            raise self._unavailable(e) from None
        except (http.client.HTTPException, OSError) as e:
            raise QueryError(f"bad response from {self.address}: {e!r}") from None
        try:
            parsed = json.loads(body)
        except ValueError:
            raise QueryError(
                f"response from {self.address} is not JSON: {self._excerpt(body, 80)}"
            ) from None
        if not isinstance(parsed, dict):
            raise QueryError(f"response from {self.address} is not a JSON object")
        if parsed.get("status") != "success":
            raise QueryError(_error_detail(body) or f"query failed: {self._excerpt(body, 200)}")
        return parsed

    def _excerpt(self, body: bytes, length: int) -> str:
        """The start of a body, quoted: masked before it is cut, so that a credential cut
        in two never shows half of itself."""
        return repr(self.redact(body.decode("utf-8", errors="replace"))[:length])

    def _unavailable(self, reason: object) -> ProviderUnavailableError:
        if isinstance(reason, TimeoutError):
            return ProviderUnavailableError(
                f"no answer from {self.address} within {self.timeout:g}s"
            )
        return ProviderUnavailableError(f"cannot reach {self.address}: {reason}")


def _port_ok(parsed: urllib.parse.SplitResult) -> bool:
    try:
        _ = parsed.port  # ValueError for a port that is not a number in range
    except ValueError:
        return False
    return True


def _tls_context(ca_pem: bytes | None, insecure: bool) -> ssl.SSLContext | None:
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_pem is None:
        return None
    try:
        return ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, ValueError):
        raise ValueError("the Prometheus CA bundle is not a PEM certificate bundle") from None


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


def secret_data(secret: Mapping[str, Any] | None) -> dict[str, bytes] | None:
    """A Secret object's `data`, base64-decoded (None for a missing Secret; undecodable
    entries are left out): what a `SecretReader` returns."""
    if secret is None:
        return None
    decoded: dict[str, bytes] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            continue
    return decoded


def provider_for(
    analysis: AnalysisSpec, default: str | None = None, secrets: SecretReader | None = None
) -> PrometheusProvider:
    """The provider for a HarnessDeployment's analysis: `analysis.prometheus.address`, else
    `default` (normally `default_address()`), with the credentials and CA bundle its
    `auth` and `caSecretRef` name, read through `secrets` (a reader of the
    HarnessDeployment's namespace). Raises `AnalysisConfigError` without an address, with a
    Secret or key missing, or when the settings need Secrets and `secrets` is None."""
    settings = analysis.prometheus
    address = (settings.address if settings else None) or default
    if not address:
        raise AnalysisConfigError(
            "analysis.prometheus.address is not set and the operator has no default"
            f" ({PROMETHEUS_URL_ENV})"
        )
    timeout = float(settings.timeout_seconds) if settings else DEFAULT_TIMEOUT_SECONDS
    try:
        if settings is None:
            return PrometheusProvider(address, timeout)
        return _configured(settings, address, timeout, secrets)
    except ValueError as e:  # AnalysisConfigError included
        raise AnalysisConfigError(redact(str(e))) from None


def _configured(
    settings: PrometheusSpec, address: str, timeout: float, secrets: SecretReader | None
) -> PrometheusProvider:
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_pem: bytes | None = None
    auth = settings.auth
    if auth is not None and auth.bearer_token_secret_ref is not None:
        field = "analysis.prometheus.auth.bearerTokenSecretRef"
        bearer_token = _secret_text(secrets, auth.bearer_token_secret_ref, field).strip()
    elif auth is not None and auth.basic_auth_secret_ref is not None:
        ref = auth.basic_auth_secret_ref
        field = "analysis.prometheus.auth.basicAuthSecretRef"
        user = _secret_text(
            secrets, PrometheusSecretKey(name=ref.name, key=ref.username_key), field
        )
        password = _secret_text(
            secrets, PrometheusSecretKey(name=ref.name, key=ref.password_key), field
        )
        basic_auth = (user.strip(), password.strip())
    if settings.ca_secret_ref is not None:
        if not address.startswith("https://"):
            raise AnalysisConfigError("analysis.prometheus.caSecretRef needs an https:// address")
        ca_pem = _secret_bytes(secrets, settings.ca_secret_ref, "analysis.prometheus.caSecretRef")
    return PrometheusProvider(
        address,
        timeout,
        bearer_token=bearer_token,
        basic_auth=basic_auth,
        ca_pem=ca_pem,
        insecure_skip_verify=settings.insecure_skip_verify,
    )


def _secret_bytes(secrets: SecretReader | None, ref: PrometheusSecretKey, field: str) -> bytes:
    if secrets is None:
        raise AnalysisConfigError(
            f"{field}: this operator was started without access to Secrets for Prometheus"
        )
    try:
        data = secrets(ref.name)
    except Exception as e:  # an API error: say which Secret, not what the client printed
        status = getattr(e, "status", None)
        why = f"HTTP {status}" if status else type(e).__name__
        raise AnalysisConfigError(f"{field}: cannot read Secret {ref.name} ({why})") from None
    if data is None:
        raise AnalysisConfigError(f"{field}: Secret {ref.name} does not exist")
    value = data.get(ref.key)
    if value is None:
        raise AnalysisConfigError(f"{field}: Secret {ref.name} has no key {ref.key}")
    return value


def _secret_text(secrets: SecretReader | None, ref: PrometheusSecretKey, field: str) -> str:
    raw = _secret_bytes(secrets, ref, field)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AnalysisConfigError(
            f"{field}: the value of Secret {ref.name} key {ref.key} is not UTF-8 text"
        ) from None
    if not text.strip():
        raise AnalysisConfigError(f"{field}: the value of Secret {ref.name} key {ref.key} is empty")
    return text

"""Prometheus credentials: sent as the Authorization header they configure (bearer token or
basic auth from a Secret, or userinfo in the address), over TLS verified against a CA bundle
from a Secret, and never shown: every message the provider produces, on every error path,
and its repr, are free of them, as are the round's status and the rollback message built from
it. Against loopback HTTP(S) servers that check the header and echo credentials back."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness_operator.analysis import (
    AnalysisConfigError,
    Outcome,
    PrometheusProvider,
    ProviderUnavailableError,
    QueryError,
    Target,
    evaluate,
    provider_for,
)
from harness_operator.analysis.providers.prometheus import redact, redact_url, secret_data
from harness_operator.api.analysis import AnalysisSpec, Check, PrometheusSpec
from harness_operator.api.status import AnalysisRecord
from harness_operator.rollout.rounds import culprit, describe_check

USER = "prom-reader"
PASSWORD = "s3cr3t-p@ss/word"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.tok3n-value_42"
TIMEOUT = 0.5
SLOW_SECONDS = 2.0
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
BEARER = f"Bearer {TOKEN}"
QUOTED = urllib.parse.quote(PASSWORD, safe="")
FORBIDDEN = (PASSWORD, QUOTED, TOKEN, BASIC.split()[1], "p@ss", "word")
"""Nothing of these may appear in any message."""


def ok(value: str = "1") -> bytes:
    result = [{"metric": {}, "value": [1767225600.0, value]}]
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    ).encode()


@dataclass
class Server:
    """A loopback Prometheus that demands `expected` as Authorization header and, for the
    `echo-*` queries, answers with bodies that repeat the URL with credentials and the
    header it received (as careless proxies and error pages do)."""

    url: str = ""
    expected: str | None = None
    seen: list[str | None] = field(default_factory=list)
    redirect_to: str = ""


def echo(server: Server, auth: str | None) -> str:
    """What a careless server says: the URL with credentials, and what it received."""
    url = server.url.replace("://", f"://{USER}:{QUOTED}@", 1)
    parts = [f"request to {url}/api/v1/query failed", f"Authorization: {auth}"]
    if auth and auth.startswith("Basic "):
        parts.append("credentials " + base64.b64decode(auth.split()[1]).decode())
    if auth and auth.startswith("Bearer "):
        parts.append("token " + auth.split()[1])
    return "; ".join(parts)


def handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            server.seen.append(auth)
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            promql = query.get("query", [""])[0]
            if promql == "redirect":
                self.send_response(302)
                self.send_header("Location", server.redirect_to + "/api/v1/query?query=vector(1)")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if server.expected is not None and auth != server.expected:
                self._send(401, echo(server, auth).encode())
                return
            if promql == "slow":
                time.sleep(SLOW_SECONDS)
            if promql == "echo-500":
                body = {"status": "error", "errorType": "internal", "error": echo(server, auth)}
                self._send(500, json.dumps(body).encode())
            elif promql == "echo-200-error":
                body = {"status": "error", "errorType": "bad_data", "error": echo(server, auth)}
                self._send(200, json.dumps(body).encode())
            elif promql == "echo-not-json":
                self._send(200, ("<html>" + echo(server, auth)).encode())
            elif promql == "echo-not-success":
                self._send(200, json.dumps({"status": echo(server, auth)}).encode())
            else:
                self._send(200, ok())

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve(server: Server, context: ssl.SSLContext | None = None) -> Callable[[], None]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(server))
    httpd.daemon_threads = True
    scheme = "http"
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    server.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return stop


@pytest.fixture
def prometheus() -> Iterator[Server]:
    server = Server()
    stop = serve(server)
    yield server
    stop()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SECRETS: dict[str, dict[str, bytes]] = {
    "prom-token": {"token": TOKEN.encode() + b"\n"},
    "prom-basic": {"username": USER.encode(), "password": PASSWORD.encode() + b"\r\n"},
    "prom-custom": {"u": USER.encode(), "p": PASSWORD.encode()},
    "bad-token": {"token": b"abc\r\nX-Injected: 1"},
    "not-utf8": {"token": b"\xff\xfe"},
    "blank": {"token": b" \n"},
    "colon-user": {"username": b"a:b", "password": b"x"},
}


def read_secret(name: str) -> dict[str, bytes] | None:
    return SECRETS.get(name)


def analysis(**prometheus: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"templates": [{"name": "t"}], "prometheus": prometheus})


def bearer(server: Server, **more: Any) -> PrometheusProvider:
    settings = analysis(
        address=server.url,
        timeoutSeconds=1,
        auth={"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}},
        **more,
    )
    p = provider_for(settings, None, read_secret)
    p.timeout = TIMEOUT
    return p


def basic(server: Server) -> PrometheusProvider:
    settings = analysis(address=server.url, auth={"basicAuthSecretRef": {"name": "prom-basic"}})
    p = provider_for(settings, None, read_secret)
    p.timeout = TIMEOUT
    return p


def userinfo(server: Server) -> PrometheusProvider:
    quoted = urllib.parse.quote(PASSWORD, safe="")
    address = server.url.replace("://", f"://{USER}:{quoted}@", 1)
    return PrometheusProvider(address, TIMEOUT)


PROVIDERS: dict[str, tuple[Callable[[Server], PrometheusProvider], str]] = {
    "bearer": (bearer, BEARER),
    "basic": (basic, BASIC),
    "userinfo": (userinfo, BASIC),
}


# --- credentials are sent ----------------------------------------------------------------


@pytest.mark.parametrize("kind", PROVIDERS)
def test_each_kind_of_credentials_is_sent_as_its_header(prometheus: Server, kind: str) -> None:
    make, header = PROVIDERS[kind]
    prometheus.expected = header
    provider = make(prometheus)
    assert provider.query("vector(1)") == 1.0
    assert prometheus.seen == [header]
    assert provider.auth_kind == ("bearer" if kind == "bearer" else "basic")


def test_without_credentials_the_server_refuses_and_says_so(prometheus: Server) -> None:
    prometheus.expected = BEARER
    with pytest.raises(QueryError, match=r"HTTP 401 .*\(check analysis\.prometheus\.auth\)"):
        PrometheusProvider(prometheus.url, TIMEOUT).query("vector(1)")
    assert prometheus.seen == [None]


def test_custom_keys_and_whitespace_around_values(prometheus: Server) -> None:
    prometheus.expected = BASIC
    settings = analysis(
        address=prometheus.url,
        auth={
            "basicAuthSecretRef": {"name": "prom-custom", "usernameKey": "u", "passwordKey": "p"}
        },
    )
    assert provider_for(settings, None, read_secret).query("vector(1)") == 1.0
    # The token's trailing newline (and the password's CRLF) were dropped: bearer/basic
    # above matched the header exactly.


def test_auth_replaces_userinfo_in_the_address(prometheus: Server) -> None:
    prometheus.expected = BEARER
    address = prometheus.url.replace("://", "://someone:else@", 1)
    settings = analysis(
        address=address, auth={"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}}
    )
    provider = provider_for(settings, None, read_secret)
    assert provider.query("vector(1)") == 1.0
    assert prometheus.seen == [BEARER]
    assert provider.address == prometheus.url.replace("://", "://***@", 1)


def test_the_default_address_gets_the_spec_credentials(prometheus: Server) -> None:
    prometheus.expected = BEARER
    settings = analysis(auth={"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}})
    assert provider_for(settings, prometheus.url, read_secret).query("vector(1)") == 1.0


def test_credentials_are_not_sent_on_a_redirect(prometheus: Server) -> None:
    elsewhere = Server()
    stop = serve(elsewhere)
    try:
        prometheus.redirect_to = elsewhere.url
        assert bearer(prometheus).query("redirect") == 1.0
    finally:
        stop()
    assert prometheus.seen == [BEARER]
    assert elsewhere.seen == [None], "the token must not follow a redirect to another server"


# --- configuration errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"bearerTokenSecretRef": {"name": "nope", "key": "token"}}, "Secret nope does not exist"),
        ({"bearerTokenSecretRef": {"name": "prom-token", "key": "t"}}, "has no key t"),
        ({"bearerTokenSecretRef": {"name": "bad-token", "key": "token"}}, "cannot carry"),
        ({"bearerTokenSecretRef": {"name": "not-utf8", "key": "token"}}, "not UTF-8"),
        ({"bearerTokenSecretRef": {"name": "blank", "key": "token"}}, "is empty"),
        ({"basicAuthSecretRef": {"name": "colon-user"}}, "must not contain ':'"),
        ({"basicAuthSecretRef": {"name": "prom-token"}}, "has no key username"),
    ],
)
def test_secret_problems_are_config_errors_naming_the_field(
    auth: dict[str, Any], message: str
) -> None:
    with pytest.raises(AnalysisConfigError, match=re.escape(message)) as caught:
        provider_for(analysis(address="http://prometheus:9090", auth=auth), None, read_secret)
    text = str(caught.value)
    assert "X-Injected" not in text
    if "Secret" in message or "key" in message:
        assert text.startswith("analysis.prometheus.auth.")


def test_without_a_secret_reader_auth_is_a_config_error() -> None:
    settings = analysis(
        address="http://prometheus:9090",
        auth={"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}},
    )
    with pytest.raises(AnalysisConfigError, match="without access to Secrets"):
        provider_for(settings, None)
    # ...while a spec without Secrets still works with the two-argument call.
    assert provider_for(analysis(address="http://prometheus:9090"), None).auth_kind is None


def test_a_failing_secret_reader_is_a_config_error_without_its_message() -> None:
    class ForbiddenError(Exception):
        status = 403

    def reader(name: str) -> dict[str, bytes] | None:
        raise ForbiddenError(f"secrets {name} is forbidden; body: {PASSWORD}")

    settings = analysis(auth={"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}})
    with pytest.raises(AnalysisConfigError) as caught:
        provider_for(settings, "http://prometheus:9090", reader)
    assert str(caught.value) == (
        "analysis.prometheus.auth.bearerTokenSecretRef: cannot read Secret prom-token (HTTP 403)"
    )


def test_the_spec_allows_exactly_one_kind_of_auth() -> None:
    with pytest.raises(ValueError, match="set exactly one of bearerTokenSecretRef"):
        PrometheusSpec.model_validate({"auth": {}})
    with pytest.raises(ValueError, match="set exactly one of bearerTokenSecretRef"):
        PrometheusSpec.model_validate(
            {
                "auth": {
                    "bearerTokenSecretRef": {"name": "a", "key": "b"},
                    "basicAuthSecretRef": {"name": "a"},
                }
            }
        )
    with pytest.raises(ValueError, match="at most one of caSecretRef and insecureSkipVerify"):
        PrometheusSpec.model_validate(
            {"caSecretRef": {"name": "a", "key": "b"}, "insecureSkipVerify": True}
        )
    with pytest.raises(ValueError, match="caSecretRef needs an https:// address"):
        PrometheusSpec.model_validate(
            {"address": "http://x", "caSecretRef": {"name": "a", "key": "b"}}
        )


def test_secret_data_decodes_a_secret_object() -> None:
    secret = {"data": {"token": base64.b64encode(b"abc\n").decode(), "junk": "%%%"}}
    assert secret_data(secret) == {"token": b"abc\n"}
    assert secret_data(None) is None
    assert secret_data({}) == {}


# --- nothing shows a credential ----------------------------------------------------------


def assert_clean(text: str) -> None:
    for secret in FORBIDDEN:
        assert secret not in text, f"{secret!r} leaked in {text!r}"


ERROR_PATHS = {
    "http-401": ("vector(1)", QueryError, "HTTP 401"),
    "http-500": ("echo-500", QueryError, "HTTP 500"),
    "error-in-200": ("echo-200-error", QueryError, "bad_data"),
    "not-json": ("echo-not-json", QueryError, "is not JSON"),
    "not-success": ("echo-not-success", QueryError, "query failed"),
    "timeout": ("slow", ProviderUnavailableError, "within 0.5s"),
}


@pytest.mark.parametrize("kind", PROVIDERS)
@pytest.mark.parametrize("path", ERROR_PATHS)
def test_no_error_message_carries_credentials(prometheus: Server, kind: str, path: str) -> None:
    query, error, text = ERROR_PATHS[path]
    make, header = PROVIDERS[kind]
    # The 401 path: the server wants other credentials than the provider has.
    prometheus.expected = "Bearer other" if path == "http-401" else header
    provider = make(prometheus)
    with pytest.raises(error) as caught:
        provider.query(query)
    message = str(caught.value)
    assert text in message
    assert_clean(message)
    assert_clean(repr(caught.value))
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("kind", PROVIDERS)
def test_connection_refused(closed_port: int, kind: str) -> None:
    make, _ = PROVIDERS[kind]
    provider = make(Server(url=f"http://127.0.0.1:{closed_port}"))
    with pytest.raises(ProviderUnavailableError, match="cannot reach") as caught:
        provider.query("vector(1)")
    assert_clean(str(caught.value))
    if kind == "userinfo":
        assert f"http://***@127.0.0.1:{closed_port}" in str(caught.value)


def test_a_library_error_is_a_clean_query_error(prometheus: Server) -> None:
    provider = userinfo(prometheus)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom while talking to {prometheus.url} as {USER}:{PASSWORD}")

    provider._opener.open = broken  # type: ignore[method-assign]
    with pytest.raises(QueryError, match="RuntimeError: boom") as caught:
        provider.query("vector(1)")
    assert_clean(str(caught.value))


def test_an_unescaped_slash_in_the_password_is_still_hidden() -> None:
    # urlsplit takes "ss" for the host here; the address shown masks up to the last "@".
    provider = PrometheusProvider(f"http://{USER}:{PASSWORD}@prometheus:9090")
    assert provider.address == "http://***@prometheus:9090"
    assert_clean(repr(provider))
    assert_clean(provider.redact(f"GET http://{USER}:{PASSWORD}@prometheus:9090/api/v1/query"))


def test_repr_and_address_hide_userinfo(prometheus: Server) -> None:
    provider = userinfo(prometheus)
    assert provider.address == prometheus.url.replace("://", "://***@", 1)
    assert repr(provider) == f"PrometheusProvider('{provider.address}', timeout=0.5, auth='basic')"
    assert_clean(repr(provider) + str(provider) + str(vars(provider).get("address")))
    settings = analysis(address=f"http://{USER}:{PASSWORD}@prometheus:9090")
    assert_clean(repr(settings) + str(settings))


@pytest.mark.parametrize(
    "address",
    [
        f"ftp://{USER}:{PASSWORD}@prometheus",
        f"http://{USER}:{QUOTED}@prometheus:port",
        f"http://{USER}:{QUOTED}@",
        f"http://{USER}:{QUOTED}@prometheus:9090/?q=1",
        f"http://{USER}:{QUOTED}@[::1",
    ],
)
def test_invalid_addresses_are_reported_without_credentials(address: str) -> None:
    with pytest.raises(ValueError, match="Prometheus address") as caught:
        PrometheusProvider(address)
    assert "***@" in str(caught.value)
    assert_clean(str(caught.value))
    with pytest.raises(AnalysisConfigError) as config:
        provider_for(analysis(), address)
    assert_clean(str(config.value))


def test_the_round_status_and_the_rollback_message_are_clean(prometheus: Server) -> None:
    prometheus.expected = BASIC
    checks = [
        Check.model_validate({"name": "errors", "query": "echo-500", "max": 1}),
        Check.model_validate({"name": "latency", "query": "echo-not-json", "max": 1}),
    ]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    round_ = evaluate(checks, analysis(), Target("h", "ns", "s1", "c1"), userinfo(prometheus), now)
    assert round_.outcome is Outcome.ERROR
    status = round_.to_status()
    assert_clean(json.dumps(status))
    assert "http://***@127.0.0.1" in json.dumps(status)
    record = AnalysisRecord.model_validate(status)
    bad = culprit(record)
    assert bad is not None
    rollback_message = describe_check(bad)
    assert "could not be evaluated" in rollback_message
    assert_clean(rollback_message)


def test_redact_masks_userinfo_and_known_secrets() -> None:
    assert redact_url("https://a:b@h:1/p") == "https://***@h:1/p"
    assert redact_url("https://a:b@c@h/p") == "https://***@h/p"
    assert redact_url("http://u:p/w@h:1") == "http://***@h:1"  # "/" in the password
    assert redact_url("http://h:1/p") == "http://h:1/p"
    assert redact("http://h/p?mail=a@b") == "http://h/p?mail=a@b"
    assert redact("see http://u:p@h and HTTPS://x@y", ()) == "see http://***@h and HTTPS://***@y"
    assert redact("token abcd in text", ("abcd",)) == "token *** in text"


# --- TLS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    server: ssl.SSLContext
    other_ca_pem: bytes


def make_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def server_context(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, directory: Path
) -> ssl.SSLContext:
    """A TLS server context for 127.0.0.1 with a certificate `ca` signed (files in
    `directory`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prometheus")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    return server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca_key, ca = make_ca("harness test CA")
    _, other = make_ca("someone else's CA")
    server = server_context(ca_key, ca, tmp_path_factory.mktemp("pki"))
    return Pki(
        ca.public_bytes(serialization.Encoding.PEM),
        server,
        other.public_bytes(serialization.Encoding.PEM),
    )


@pytest.fixture
def tls_prometheus(pki: Pki) -> Iterator[Server]:
    server = Server(expected=BEARER)
    stop = serve(server, pki.server)
    yield server
    stop()


def with_ca(server: Server, ca: bytes | None, **more: Any) -> PrometheusProvider:
    secrets = {**SECRETS, "prom-ca": {"ca.crt": ca} if ca is not None else {}}
    settings = analysis(
        address=server.url,
        auth={"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}},
        **({"caSecretRef": {"name": "prom-ca", "key": "ca.crt"}} if ca is not None else {}),
        **more,
    )
    provider = provider_for(settings, None, secrets.get)
    provider.timeout = TIMEOUT
    return provider


def test_tls_verified_with_the_ca_from_the_secret(tls_prometheus: Server, pki: Pki) -> None:
    assert tls_prometheus.url.startswith("https://")
    assert with_ca(tls_prometheus, pki.ca_pem).query("vector(1)") == 1.0
    assert tls_prometheus.seen == [BEARER]


@pytest.mark.parametrize("which", ["system trust store", "another CA"])
def test_tls_with_an_untrusted_certificate_fails_cleanly(
    tls_prometheus: Server, pki: Pki, which: str
) -> None:
    provider = with_ca(tls_prometheus, None if which == "system trust store" else pki.other_ca_pem)
    with pytest.raises(ProviderUnavailableError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        provider.query("vector(1)")
    assert_clean(str(caught.value))
    assert tls_prometheus.seen == [], "no request (and no token) went out"


def test_tls_insecure_skip_verify(tls_prometheus: Server) -> None:
    assert with_ca(tls_prometheus, None, insecureSkipVerify=True).query("vector(1)") == 1.0


def test_a_ca_secret_that_is_not_pem_is_a_config_error(tls_prometheus: Server) -> None:
    with pytest.raises(AnalysisConfigError, match="not a PEM certificate bundle"):
        with_ca(tls_prometheus, b"-----BEGIN CERTIFICATE-----\nnope\n")


def test_a_ca_for_a_plain_http_default_address_is_a_config_error(pki: Pki) -> None:
    settings = analysis(caSecretRef={"name": "prom-ca", "key": "ca.crt"})
    with pytest.raises(AnalysisConfigError, match="needs an https:// address"):
        provider_for(settings, "http://prometheus:9090", {"prom-ca": {"ca.crt": pki.ca_pem}}.get)


def test_the_documented_example_is_valid() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "auth:" in b]
    settings = PrometheusSpec.model_validate(yaml.safe_load(block)["analysis"]["prometheus"])
    assert settings.auth is not None
    assert settings.auth.bearer_token_secret_ref is not None
    assert settings.ca_secret_ref is not None

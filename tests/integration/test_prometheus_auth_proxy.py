"""A secured Prometheus: the test bed's real Prometheus behind a loopback proxy that demands
credentials (and, for one test, speaks TLS with a self-signed CA). The credentials and the CA
bundle come from real Secrets, read the way the reconciler reads them
(`secret_data(kube.get("v1", "Secret", namespace, name))`), and the CRD accepts the settings
and refuses contradictory ones. No message ever shows a credential."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from kubernetes import client

from harness_operator.analysis import (
    Outcome,
    PrometheusProvider,
    QueryError,
    Target,
    evaluate,
    provider_for,
)
from harness_operator.analysis.providers.prometheus import SecretReader, secret_data
from harness_operator.api.analysis import AnalysisSpec, Check
from harness_operator.kube import Kube
from harness_operator.rollout import REASON_ANALYSIS_ERRORS
from scenarios import Harnesses, Releases, release_spec
from testbed import Prometheus
from unit.test_prometheus_auth import make_ca, server_context

USER = "grafana-agent"
PASSWORD = "pa:ss/w@rd-\u00e9t\u00e9"
TOKEN = "glsa_t0ken-for.the+test/bed=="
BEARER = f"Bearer {TOKEN}"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
QUOTED = urllib.parse.quote(PASSWORD, safe="")
FORBIDDEN = (PASSWORD, QUOTED, TOKEN, BASIC.split()[1], "ss/w@rd")


def assert_clean(text: str) -> None:
    for secret in FORBIDDEN:
        assert secret not in text, f"{secret!r} leaked in {text!r}"


@dataclass
class AuthProxy:
    """Forwards `/api/v1/query` to the real Prometheus when the Authorization header is the
    expected one; answers 401 otherwise, with a body that echoes the credentials it got."""

    upstream: str
    expected: str
    url: str = ""
    seen: list[str | None] = field(default_factory=list)


def proxy_handler(proxy: AuthProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            proxy.seen.append(auth)
            if auth != proxy.expected:
                decoded = ""
                if auth and auth.startswith("Basic "):
                    decoded = base64.b64decode(auth.split()[1]).decode(errors="replace")
                self._send(401, f"denied {auth} ({decoded}) for {self.path}".encode())
                return
            try:
                with urllib.request.urlopen(proxy.upstream + self.path, timeout=10) as resp:
                    self._send(resp.status, resp.read())
            except urllib.error.HTTPError as e:
                self._send(e.code, e.read())

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def start(proxy: AuthProxy, context: ssl.SSLContext | None = None) -> Callable[[], None]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler(proxy))
    httpd.daemon_threads = True
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    scheme = "https" if context is not None else "http"
    proxy.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return stop


@pytest.fixture
def bearer_proxy(prometheus: Prometheus) -> Iterator[AuthProxy]:
    proxy = AuthProxy(prometheus.url, BEARER)
    stop = start(proxy)
    yield proxy
    stop()


@dataclass(frozen=True)
class Tls:
    ca_pem: bytes
    server: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca_key, ca = make_ca("test bed Prometheus CA")
    server = server_context(ca_key, ca, tmp_path_factory.mktemp("tls"))
    return Tls(ca.public_bytes(serialization.Encoding.PEM), server)


@pytest.fixture
def secrets(namespace: str, core: client.CoreV1Api, tls: Tls) -> SecretReader:
    """The Secrets in the test's namespace, and a reader as the reconciler builds it."""
    for name, data in {
        "prom-token": {"token": TOKEN.encode() + b"\n"},
        "prom-basic": {"username": USER.encode(), "password": PASSWORD.encode()},
        "prom-ca": {"ca.crt": tls.ca_pem},
    }.items():
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                data={k: base64.b64encode(v).decode() for k, v in data.items()},
            ),
        )
    kube = Kube()
    return lambda name: secret_data(kube.get("v1", "Secret", namespace, name))


def analysis(**prometheus: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"templates": [{"name": "t"}], "prometheus": prometheus})


def test_bearer_token_from_a_secret(bearer_proxy: AuthProxy, secrets: SecretReader) -> None:
    settings = analysis(
        address=bearer_proxy.url,
        auth={"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}},
    )
    provider = provider_for(settings, None, secrets)
    assert provider.query("vector(1)") == 1.0
    now = provider.query("time()")
    assert now is not None
    assert abs(now - time.time()) < 60, "the real Prometheus evaluated it"
    assert bearer_proxy.seen == [BEARER, BEARER]


def test_basic_auth_over_tls_with_the_ca_from_a_secret(
    prometheus: Prometheus, secrets: SecretReader, tls: Tls
) -> None:
    proxy = AuthProxy(prometheus.url, BASIC)
    stop = start(proxy, tls.server)
    try:
        settings = analysis(
            address=proxy.url,
            auth={"basicAuthSecretRef": {"name": "prom-basic"}},
            caSecretRef={"name": "prom-ca", "key": "ca.crt"},
        )
        assert proxy.url.startswith("https://")
        assert provider_for(settings, None, secrets).query("vector(1)") == 1.0
        # Without the CA, the certificate is refused before any credential is sent.
        unverified = analysis(
            address=proxy.url, auth={"basicAuthSecretRef": {"name": "prom-basic"}}
        )
        with pytest.raises(QueryError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            provider_for(unverified, None, secrets).query("vector(1)")
        assert_clean(str(caught.value))
    finally:
        stop()
    assert proxy.seen == [BASIC]


def test_wrong_credentials_are_reported_without_any_credential(
    prometheus: Prometheus, secrets: SecretReader
) -> None:
    proxy = AuthProxy(prometheus.url, "Bearer something-else")
    stop = start(proxy)
    try:
        address = proxy.url.replace("://", f"://{USER}:{QUOTED}@", 1)
        provider = provider_for(analysis(), address, secrets)
        assert provider.address == proxy.url.replace("://", "://***@", 1)
        with pytest.raises(QueryError, match="HTTP 401") as caught:
            provider.query("vector(1)")
        message = str(caught.value)
        assert "(check analysis.prometheus.auth)" in message
        assert_clean(message)
        assert_clean(repr(provider))

        check = Check.model_validate({"name": "up", "query": "vector(1)", "max": 2})
        now = dt.datetime.now(dt.UTC)
        round_ = evaluate([check], analysis(), Target("h", "ns", "s", "c"), provider, now)
        assert round_.outcome is Outcome.ERROR
        assert_clean(json.dumps(round_.to_status()))
    finally:
        stop()
    assert proxy.seen == [BASIC, BASIC], "the userinfo was sent as basic auth"


def test_a_missing_secret_is_a_config_error(bearer_proxy: AuthProxy, secrets: SecretReader) -> None:
    settings = analysis(
        address=bearer_proxy.url, auth={"bearerTokenSecretRef": {"name": "absent", "key": "k"}}
    )
    with pytest.raises(ValueError, match="Secret absent does not exist"):
        provider_for(settings, None, secrets)
    assert bearer_proxy.seen == []


def test_the_crd_takes_the_settings_and_refuses_contradictions(
    crds: None, harness: Harnesses
) -> None:
    def spec(**prometheus: Any) -> dict[str, Any]:
        return {
            "image": "ghcr.io/acme/agent:1.0",
            "analysis": {
                "prometheus": prometheus,
                "checks": [{"name": "up", "query": "vector(1)", "min": 1}],
            },
        }

    token = {"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}}
    ca = {"name": "prom-ca", "key": "ca.crt"}
    created = harness.create(
        "secured", spec(address="https://prometheus:9090", auth=token, caSecretRef=ca)
    )
    stored = created["spec"]["analysis"]["prometheus"]
    assert stored["auth"] == token
    # A field added after operator 0.1: the operator defaults it, the CRD does not store it.
    assert "insecureSkipVerify" not in stored
    assert harness.create("basic", spec(auth={"basicAuthSecretRef": {"name": "b"}}))["spec"][
        "analysis"
    ]["prometheus"]["auth"]["basicAuthSecretRef"] == {
        "name": "b",
        "usernameKey": "username",
        "passwordKey": "password",
    }

    refused = {
        "two-kinds": (
            spec(auth={**token, "basicAuthSecretRef": {"name": "b"}}),
            "set exactly one of bearerTokenSecretRef and basicAuthSecretRef",
        ),
        "no-kind": (spec(auth={}), "set exactly one of bearerTokenSecretRef"),
        "ca-and-insecure": (
            spec(caSecretRef=ca, insecureSkipVerify=True),
            "set at most one of caSecretRef and insecureSkipVerify",
        ),
        "ca-over-http": (
            spec(address="http://prometheus:9090", caSecretRef=ca),
            "caSecretRef needs an https:// address",
        ),
    }
    for name, (body, message) in refused.items():
        error = harness.try_create(name, body)
        assert error is not None, name
        assert error.status == 422, (name, error.body)
        assert message in json.loads(error.body or "{}")["message"], (name, error.body)


def test_a_provider_for_an_address_with_userinfo_shows_none(prometheus: Prometheus) -> None:
    # The plain test bed Prometheus ignores the header: the address works, and is masked.
    address = prometheus.url.replace("://", f"://{USER}:{QUOTED}@", 1)
    provider = PrometheusProvider(address)
    assert provider.query("vector(1)") == 1.0
    assert_clean(repr(provider) + provider.address)


def secured_release(address: str, token_secret: str) -> dict[str, Any]:
    spec = release_spec("ghcr.io/acme/agent:1.0")
    spec["analysis"]["prometheus"] = {
        "address": address,
        "auth": {"bearerTokenSecretRef": {"name": token_secret, "key": "token"}},
    }
    return spec


def test_a_release_is_analysed_through_the_secured_prometheus(
    releases: Callable[[str], Releases], bearer_proxy: AuthProxy, secrets: SecretReader
) -> None:
    # The operator reads the token from the HarnessDeployment's namespace itself.
    agent = releases("agent").deployed(secured_release(bearer_proxy.url, "prom-token"))
    before = agent.status()["stableRevision"]

    agent.new_image("ghcr.io/acme/agent:1.1")

    status = agent.wait_for_phase("Ready", release_of=before, timeout=120)
    assert status["stableRevision"] != before, "promoted"
    assert status["lastAnalysis"]["outcome"] == "Pass"
    assert bearer_proxy.seen, "the analysis went through the secured Prometheus"
    assert set(bearer_proxy.seen) == {BEARER}, "every query carried the token"


def test_a_refused_token_rolls_back_on_analysis_errors_and_never_shows_it(
    releases: Callable[[str], Releases],
    prometheus: Prometheus,
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    proxy = AuthProxy(prometheus.url, "Bearer the-token-prometheus-wants")
    stop = start(proxy)
    try:
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="stale-token"),
                string_data={"token": TOKEN},
            ),
        )
        agent = releases("agent").deployed(secured_release(proxy.url, "stale-token"))
        before = agent.status()["stableRevision"]

        agent.new_image("ghcr.io/acme/agent:1.1")

        agent.wait_for_release_start(before)
        status = agent.wait_for_phase("RolledBack", "Ready", timeout=90)
    finally:
        stop()
    assert status["phase"] == "RolledBack"
    assert status["rollback"]["reason"] == REASON_ANALYSIS_ERRORS
    assert "HTTP 401" in json.dumps(status["lastAnalysis"]), status["lastAnalysis"]
    assert proxy.seen, "the analysis reached the proxy"
    assert set(proxy.seen) == {BEARER}, "the Secret's token was sent"
    assert_clean(json.dumps(agent.harness.get("agent")))
    assert_clean(json.dumps(agent.harness.events("agent")))

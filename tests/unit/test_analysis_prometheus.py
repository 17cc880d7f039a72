"""`PrometheusProvider` against a tiny fake Prometheus on 127.0.0.1: result types, errors,
NaN, timeouts, a closed port, and one round of checks end to end."""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness_operator.analysis import (
    PROMETHEUS_URL_ENV,
    AnalysisConfigError,
    Outcome,
    PrometheusProvider,
    ProviderUnavailableError,
    QueryError,
    Target,
    default_address,
    evaluate,
    provider_for,
)
from harness_operator.api.analysis import AnalysisSpec, Check

SLOW_SECONDS = 1.5
TIMEOUT = 0.3


def ok(result_type: str, result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


def sample(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1767225600.0, value]}


@dataclass
class Reply:
    body: Any
    status: int = 200
    delay: float = 0.0
    raw: bool = False


@dataclass
class FakePrometheus:
    """Answers `/api/v1/query` from `replies` (keyed by the query); records requests."""

    url: str
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


REPLIES: dict[str, Reply] = {
    "vector(1)": Reply(ok("vector", [sample("1")])),
    "one": Reply(ok("vector", [sample("0.25", job="x")])),
    "int-like": Reply(ok("vector", [sample("3")])),
    "empty": Reply(ok("vector", [])),
    "nan": Reply(ok("vector", [sample("NaN")])),
    "inf": Reply(ok("vector", [sample("+Inf")])),
    "scalar": Reply(ok("scalar", [1767225600.0, "42.5"])),
    "scalar-nan": Reply(ok("scalar", [1767225600.0, "NaN"])),
    "several": Reply(
        ok(
            "vector",
            [sample("1", pod="a"), sample("2", pod="b"), sample("3", pod="c"), sample("4")],
        )
    ),
    "matrix": Reply(ok("matrix", [{"metric": {}, "values": [[1.0, "1"], [2.0, "2"]]}])),
    "string": Reply(ok("string", [1.0, "hello"])),
    "bad-promql": Reply(
        {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected"},
        status=400,
    ),
    "exec-error": Reply(
        {"status": "error", "errorType": "execution", "error": "many-to-many matching"},
        status=422,
    ),
    "gateway": Reply("<html>502 Bad Gateway</html>", status=502, raw=True),
    "not-json": Reply("hello", raw=True),
    "error-200": Reply({"status": "error", "errorType": "internal", "error": "oops"}),
    "bad-value": Reply(ok("vector", [sample("abc")])),
    "huge": Reply("x" * (2 << 20), raw=True),
    "slow": Reply(ok("vector", [sample("1")]), delay=SLOW_SECONDS),
}


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus(url="", replies=dict(REPLIES))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            params = urllib.parse.parse_qs(parsed.query)
            fake.paths.append(parsed.path)
            fake.requests.append(params)
            if not parsed.path.endswith("/api/v1/query"):
                self._send(404, b"not found")
                return
            reply = fake.replies.get(params.get("query", [""])[0])
            if reply is None:
                self._send(200, json.dumps(ok("vector", [])).encode())
                return
            time.sleep(reply.delay)
            body = reply.body if reply.raw else json.dumps(reply.body)
            self._send(reply.status, body.encode())

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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def provider(fake: FakePrometheus, **kwargs: Any) -> PrometheusProvider:
    return PrometheusProvider(fake.url, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("one", 0.25),
        ("int-like", 3.0),
        ("scalar", 42.5),
        ("empty", None),
        ("inf", math.inf),
    ],
)
def test_values(prometheus: FakePrometheus, query: str, expected: float | None) -> None:
    assert provider(prometheus).query(query) == expected


@pytest.mark.parametrize("query", ["nan", "scalar-nan"])
def test_nan_is_passed_on(prometheus: FakePrometheus, query: str) -> None:
    value = provider(prometheus).query(query)
    assert value is not None
    assert math.isnan(value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("several", "query returned 4 series, a check needs exactly one number; aggregate them"),
        ("matrix", "range vector (matrix)"),
        ("string", "a string result"),
        ("bad-promql", "HTTP 400 from http://127.0.0.1"),
        ("exec-error", "HTTP 422"),
        ("gateway", "HTTP 502"),
        ("not-json", "is not JSON"),
        ("error-200", "internal: oops"),
        ("bad-value", "'abc' is not a number"),
        ("huge", "response larger than"),
    ],
)
def test_unusable_answers_raise_query_error(
    prometheus: FakePrometheus, query: str, message: str
) -> None:
    with pytest.raises(QueryError, match=re.escape(message)) as caught:
        provider(prometheus).query(query)
    assert not isinstance(caught.value, ProviderUnavailableError)


def test_error_details_are_quoted(prometheus: FakePrometheus) -> None:
    with pytest.raises(QueryError) as caught:
        provider(prometheus).query("bad-promql")
    assert str(caught.value).endswith("bad_data: 1:5: parse error: unexpected")
    with pytest.raises(QueryError, match=r'\{pod="a"\}, \{pod="b"\}, \{pod="c"\}, \.\.\.'):
        provider(prometheus).query("several")


def test_request_shape(prometheus: FakePrometheus) -> None:
    promql = 'sum(rate(x{a="b c"}[1m])) / 2'
    provider(prometheus, timeout=2.5).query(promql)
    assert prometheus.paths == ["/api/v1/query"]
    assert prometheus.requests == [{"query": [promql], "timeout": ["2.5"]}]


def test_path_prefix_is_kept(prometheus: FakePrometheus) -> None:
    PrometheusProvider(prometheus.url + "/prom/", timeout=TIMEOUT).query("one")
    assert prometheus.paths == ["/prom/api/v1/query"]


def test_slow_answer_is_a_timeout(prometheus: FakePrometheus) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError, match=r"no answer from .* within 0.3s"):
        provider(prometheus).query("slow")
    assert time.monotonic() - started < SLOW_SECONDS


def test_closed_port(closed_port: int) -> None:
    p = PrometheusProvider(f"http://127.0.0.1:{closed_port}", timeout=TIMEOUT)
    with pytest.raises(ProviderUnavailableError, match=r"cannot reach http://127\.0\.0\.1"):
        p.query("vector(1)")
    assert p.is_online() is False


def test_is_online(prometheus: FakePrometheus) -> None:
    assert provider(prometheus).is_online() is True
    prometheus.replies["vector(1)"] = Reply(ok("vector", [sample("0")]))
    assert provider(prometheus).is_online() is False
    prometheus.replies["vector(1)"] = REPLIES["gateway"]
    assert provider(prometheus).is_online() is False


def test_proxy_settings_are_ignored(
    prometheus: FakePrometheus, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port}")
    assert provider(prometheus).query("one") == 0.25


@pytest.mark.parametrize(
    ("address", "timeout"), [("prometheus:9090", 5.0), ("ftp://x", 5.0), ("http://x", 0)]
)
def test_invalid_settings(address: str, timeout: float) -> None:
    with pytest.raises(ValueError, match="Prometheus"):
        PrometheusProvider(address, timeout)


# --- choosing the server -----------------------------------------------------------------


def spec(**fields: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"templates": [{"name": "t"}], **fields})


def test_provider_for_prefers_the_spec() -> None:
    p = provider_for(spec(prometheus={"address": "http://a:9090", "timeoutSeconds": 9}), "http://b")
    assert (p.address, p.timeout) == ("http://a:9090", 9.0)
    p = provider_for(spec(prometheus={"timeoutSeconds": 2}), "http://b:9090/")
    assert (p.address, p.timeout) == ("http://b:9090", 2.0)
    p = provider_for(spec(), "http://b:9090")
    assert (p.address, p.timeout) == ("http://b:9090", 5.0)


def test_provider_for_without_any_address() -> None:
    with pytest.raises(AnalysisConfigError, match="HARNESS_PROMETHEUS_URL"):
        provider_for(spec(), None)
    with pytest.raises(AnalysisConfigError, match="must be an http"):
        provider_for(spec(), "prometheus:9090")


def test_default_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROMETHEUS_URL_ENV, raising=False)
    assert default_address() is None
    monkeypatch.setenv(PROMETHEUS_URL_ENV, "")
    assert default_address() is None
    monkeypatch.setenv(PROMETHEUS_URL_ENV, "http://prometheus.monitoring:9090")
    assert default_address() == "http://prometheus.monitoring:9090"


# --- end to end --------------------------------------------------------------------------


def test_a_round_against_the_fake_server(prometheus: FakePrometheus, closed_port: int) -> None:
    def check(name: str, query: str, **fields: Any) -> Check:
        return Check.model_validate({"name": name, "query": query, "max": 1, **fields})

    checks = [
        check("fine", "one"),
        check("several", "several"),
        check("matrix", "matrix"),
        check("nan-fails", "nan", onNoData="fail"),
        check("empty", "empty"),
        check("bad", "bad-promql"),
    ]
    target = Target("h", "ns", "s1", "c1")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    round_ = evaluate(checks, spec(), target, provider(prometheus), now)
    outcomes = {r.name: r.outcome for r in round_.results}
    assert outcomes == {
        "fine": Outcome.PASS,
        "several": Outcome.ERROR,
        "matrix": Outcome.ERROR,
        "nan-fails": Outcome.FAIL,
        "empty": Outcome.INCONCLUSIVE,
        "bad": Outcome.ERROR,
    }
    assert round_.outcome is Outcome.FAIL
    several = round_.result("several")
    assert several is not None
    assert "4 series" in several.message

    down = PrometheusProvider(f"http://127.0.0.1:{closed_port}", timeout=TIMEOUT)
    round_ = evaluate(checks, spec(), target, down, now)
    assert {r.outcome for r in round_.results} == {Outcome.ERROR}
    assert round_.outcome is Outcome.ERROR

    prometheus.requests.clear()
    started = time.monotonic()
    slow = [check("slow", "slow"), check("fine", "one")]
    round_ = evaluate(slow, spec(), target, provider(prometheus), now)
    assert [r.outcome for r in round_.results] == [Outcome.ERROR, Outcome.ERROR]
    assert time.monotonic() - started < SLOW_SECONDS  # the second query was never sent
    assert len(prometheus.requests) == 1

"""TrafficSim as a process would run it: a real /metrics server on loopback, a ticking
thread, and the `python -m harness_operator.sim` entry point."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import click
import pytest
from click.testing import CliRunner

import harness_operator.kube.client
from harness_operator.sim import TrafficSim
from harness_operator.sim.__main__ import main, parse_setting

NS, NAME = "agents", "pr-reviewer"


class FakeKube:
    def __init__(self, api: Any = None) -> None:
        self.vs = {
            "spec": {
                "http": [
                    {
                        "route": [
                            {"destination": {"host": f"{NAME}-stable"}, "weight": 80},
                            {"destination": {"host": f"{NAME}-canary"}, "weight": 20},
                        ]
                    }
                ]
            }
        }

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        return self.vs if kind == "VirtualService" else None


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def test_serves_metrics_on_loopback_and_stops() -> None:
    sim = TrafficSim(FakeKube(), NS, NAME, seed=1)
    sim.step(1.0)
    port = sim.start(0)
    try:
        assert port > 0
        assert sim.port == port
        assert sim.url == f"http://127.0.0.1:{port}/metrics"
        body = fetch(f"http://127.0.0.1:{port}/metrics")
        assert 'harness_requests_total{harness="pr-reviewer",namespace="agents"' in body
        assert 'track="canary"' in body
        assert "istio_request_duration_milliseconds_bucket{" in body
        with pytest.raises(RuntimeError, match="already serves"):
            sim.start(0)
    finally:
        sim.stop()
    sim.stop()  # idempotent
    assert sim.port is None


def test_context_manager_ticks_in_the_background() -> None:
    with TrafficSim(FakeKube(), NS, NAME, rps=200, seed=1) as sim:
        assert sim.port is not None
        for _ in range(100):  # at most 5 s; the first tick comes after 0.25 s
            if sum(sim.counts().values()):
                break
            time.sleep(0.05)
    assert sum(sim.counts().values()) > 0
    assert sim.port is None


def test_parse_setting() -> None:
    assert parse_setting("canary.error_rate=0.2") == ("canary", "error_rate", 0.2)
    for bad in ("canary.error_rate", "blue.error_rate=1", "canary.nope=1", "stable=1"):
        with pytest.raises(click.BadParameter):
            parse_setting(bad)
    with pytest.raises(click.BadParameter, match="not a number"):
        parse_setting("canary.latency_p95=fast")


def test_command_line_runs_for_a_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness_operator.kube.client, "Kube", FakeKube)
    result = CliRunner().invoke(
        main,
        [
            *("-n", NS, "--name", NAME, "--rps", "400", "--duration", "0.6"),
            *("--seed", "3", "--set", "canary.error_rate=0.5"),
        ],
    )
    assert result.exit_code == 0, result.output
    first, *_, last = result.output.splitlines()
    assert first.startswith("serving http://127.0.0.1:")
    counts = dict(part.split("=") for part in last.split())
    assert int(counts["stable"]) > int(counts["canary"]) > 0

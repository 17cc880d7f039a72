"""The harness as the container runs it: `python -m harness_app`, signals and exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from fakeapi import FakeModelAPI, ModelBehaviour
from prometheus_client.parser import text_string_to_metric_families

from apptest import KEY, MODEL, SRC, HarnessProcess

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def harness_env(fake: FakeModelAPI) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": fake.url,
        "ANTHROPIC_MODEL": MODEL,
        "HARNESS_HOST": "127.0.0.1",
        "HARNESS_PORT": "0",  # any free port; the "listening" log line says which
        "HARNESS_METRICS_PORT": "0",
    }


@pytest.fixture
def started(harness_env: dict[str, str]) -> Iterator[tuple[HarnessProcess, str, str]]:
    """(process, API URL, metrics URL), after the harness logged that it started."""
    process = HarnessProcess(harness_env)
    try:
        api = process.wait_for("listening", listener="api")
        metrics = process.wait_for("listening", listener="metrics")
        process.wait_for("started")
        yield process, f"http://127.0.0.1:{api['port']}", f"http://127.0.0.1:{metrics['port']}"
    finally:
        process.close()


async def inflight(session: aiohttp.ClientSession, metrics_url: str) -> float:
    async with session.get(metrics_url + "/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        if family.name == "harness_inflight_tasks":
            return family.samples[0].value
    raise AssertionError("no harness_inflight_tasks")


async def wait_for_inflight(session: aiohttp.ClientSession, metrics_url: str, n: int) -> None:
    async with asyncio.timeout(5):
        while await inflight(session, metrics_url) != n:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def test_sigterm_drains_in_flight_tasks_then_exits_0(
    fake: FakeModelAPI, started: tuple[HarnessProcess, str, str]
) -> None:
    fake.set_model(MODEL, ModelBehaviour(latency_seconds=1.5))
    process, url, metrics_url = started

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            # /metrics lives on its own port only.
            async with session.get(url + "/metrics") as response:
                assert response.status == 404
            slow = asyncio.create_task(session.post(url + "/v1/tasks", json={"prompt": "x"}))
            await wait_for_inflight(session, metrics_url, 1)
            sent_at = time.monotonic()
            process.terminate()

            async with asyncio.timeout(5):  # the signal is handled asynchronously
                while True:
                    async with session.get(url + "/ready") as ready:
                        if ready.status == 503:
                            assert "draining" in (await ready.json())["reasons"]
                            break
                    await asyncio.sleep(0.01)
            async with session.post(url + "/v1/tasks", json={"prompt": "x"}) as refused:
                assert refused.status == 503
                assert (await refused.json())["error"] == "draining"
            async with session.get(url + "/health") as health:
                assert health.status == 200

            response = await slow
            assert response.status == 200
            assert (await response.json())["outcome"] == "success"
            assert time.monotonic() - sent_at < 5

    asyncio.run(scenario())
    assert process.proc.wait(timeout=10) == 0
    process.wait_for("drained")
    process.wait_for("stopped")


def test_drain_period_is_bounded(fake: FakeModelAPI, harness_env: dict[str, str]) -> None:
    fake.set_model(MODEL, ModelBehaviour(latency_seconds=30))
    process = HarnessProcess({**harness_env, "HARNESS_DRAIN_SECONDS": "0.2"})
    try:
        api = process.wait_for("listening", listener="api")
        metrics = process.wait_for("listening", listener="metrics")
        url, metrics_url = f"http://127.0.0.1:{api['port']}", f"http://127.0.0.1:{metrics['port']}"

        async def scenario() -> None:
            async with aiohttp.ClientSession() as session:
                slow = asyncio.create_task(session.post(url + "/v1/tasks", json={"prompt": "x"}))
                await wait_for_inflight(session, metrics_url, 1)
                process.terminate()
                response = await slow  # ended when the drain period is over, but answered
                assert response.status == 503
                assert response.headers["Retry-After"] == "1"
                assert (await response.json())["outcome"] == "cancelled"

        started = time.monotonic()
        asyncio.run(scenario())
        assert process.proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5  # not the model's 30 s
        process.wait_for("drain period over, cancelling", inflight=1)
        process.wait_for("task finished", outcome="cancelled")
        process.wait_for("stopped")
    finally:
        process.close()


def test_invalid_configuration_exits_2_naming_the_variable(harness_env: dict[str, str]) -> None:
    env = {**harness_env, "HARNESS_MAX_TURNS": "lots", "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-m", "harness_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert "HARNESS_MAX_TURNS" in entry["message"]
    assert KEY not in result.stderr


def test_console_script_points_at_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = project["project"]["scripts"]["harness-app"]
    assert target == "harness_app.__main__:main"
    from harness_app.__main__ import main

    assert callable(main)


def test_worker_mode_drains_the_queue_and_stops_leasing_on_sigterm(
    harness_env: dict[str, str], fake: FakeModelAPI
) -> None:
    from taskqueue import TaskQueue

    with TaskQueue() as queue:
        queue.put(*[f"task {i}" for i in range(6)])
        process = HarnessProcess(
            {
                **harness_env,
                "HARNESS_QUEUE_URL": queue.url,
                "HARNESS_WORKER_NAME": "worker-a",
                "HARNESS_MAX_CONCURRENCY": "2",
            }
        )
        try:
            for _ in range(6):
                process.wait_for("task finished", timeout=20)
            deadline = time.monotonic() + 5
            while queue.done().get("success", 0) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert queue.done() == {"success": 6}
            assert queue.by_worker() == {"worker-a": 6}
            process.terminate()
            process.wait_for("stopped", timeout=15)
            queue.put("after the stop")
            assert process.proc.wait(timeout=10) == 0
            assert queue.depth == 1, "a drained worker leases nothing more"
        finally:
            process.close()

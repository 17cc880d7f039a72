"""Run mode (`HARNESS_RUN_TASKS`): n tasks through the agent loop, a run report, an exit
status by the tasks' outcomes; as the container runs it (a subprocess) and in process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeModelAPI, Fault, ModelBehaviour
from prometheus_client.parser import text_string_to_metric_families

from apptest import KEY, MODEL, SRC, HarnessProcess, Setenv, sample
from harness_app.config import ConfigError, load_config
from harness_app.pricing import TokenUsage, builtin_price, cost_usd
from harness_app.run import RunReport, run_tasks
from harness_app.server import Harness

REPORT_KEYS = [
    "tasks",
    "failed",
    "costUsd",
    "inputTokens",
    "outputTokens",
    "cacheReadTokens",
    "cacheWriteTokens",
    "durationSeconds",
]
# Fixed token counts, so that the report's sums are exact.
TOKENS = ModelBehaviour(
    input_tokens=120,
    output_tokens=40,
    cache_read_input_tokens=10,
    cache_creation_input_tokens=5,
    tool_turns=1,  # two model calls per task: tool_use, then the answer
)


@pytest.fixture
def run_env(fake: FakeModelAPI, tmp_path: Path) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": fake.url,
        "ANTHROPIC_MODEL": MODEL,
        "HARNESS_HOST": "127.0.0.1",
        "HARNESS_PORT": "0",
        "HARNESS_METRICS_PORT": "0",
        "HARNESS_RUN_TASKS": "2",
        # Never the default /dev/termination-log: these tests may run as root on a host.
        "HARNESS_REPORT_PATH": str(tmp_path / "termination-log"),
    }


def run_process(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "HARNESS_"))}
    full |= env | {"PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "harness_app"],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def report_at(path: str) -> dict[str, Any]:
    text = Path(path).read_text()
    assert len(text.encode()) < 1024, "far below the kubelet's 4096-byte cap"
    assert " " not in text, "compact JSON"
    report: dict[str, Any] = json.loads(text)
    assert list(report) == REPORT_KEYS
    return report


def model_calls(fake: FakeModelAPI) -> int:
    return len([r for r in fake.requests() if r.endpoint == "messages"])


def test_run_mode_does_n_tasks_writes_the_report_and_exits_0(
    fake: FakeModelAPI, run_env: dict[str, str]
) -> None:
    fake.set_model(MODEL, TOKENS)
    result = run_process(run_env)
    assert result.returncode == 0, result.stderr
    report = report_at(run_env["HARNESS_REPORT_PATH"])
    calls = model_calls(fake)
    assert calls == 4, "two tasks, two model calls each"
    assert report["tasks"] == 2
    assert report["failed"] == 0
    assert report["inputTokens"] == 120 * calls
    assert report["outputTokens"] == 40 * calls
    assert report["cacheReadTokens"] == 10 * calls
    assert report["cacheWriteTokens"] == 5 * calls
    price = builtin_price(MODEL)
    assert price is not None
    expected = cost_usd(TokenUsage(120, 40, 10, 5), price) * calls
    assert report["costUsd"] == pytest.approx(expected)
    assert report["costUsd"] > 0
    assert 0 < report["durationSeconds"] < 60
    assert result.stdout == "", "the report went to its file, not stdout"
    logs = [json.loads(line) for line in result.stderr.splitlines()]
    finished = [e for e in logs if e["message"] == "task finished"]
    assert [e["outcome"] for e in finished] == ["success", "success"]
    (summary,) = [e for e in logs if e["message"] == "run finished"]
    assert summary["report_written"] is True
    assert {k: summary[k] for k in REPORT_KEYS} == report


def test_a_failed_task_fails_the_run(fake: FakeModelAPI, run_env: dict[str, str]) -> None:
    fake.set_model(MODEL, TOKENS)
    # One model call is refused for good (400 is not retried): that task fails, the other
    # finishes, and the run exits 1 with what both spent.
    fake.inject(Fault(status=400, count=1))
    result = run_process({**run_env, "HARNESS_MAX_CONCURRENCY": "1"})
    assert result.returncode == 1, result.stderr
    report = report_at(run_env["HARNESS_REPORT_PATH"])
    assert (report["tasks"], report["failed"]) == (2, 1)
    assert report["outputTokens"] == 40 * 2, "only the successful task's two calls"


def test_a_failing_model_fails_every_task(fake: FakeModelAPI, run_env: dict[str, str]) -> None:
    fake.set_model(MODEL, ModelBehaviour(error_rate=1.0, error_status=500))
    result = run_process({**run_env, "HARNESS_MAX_RETRIES": "1"})
    assert result.returncode == 1, result.stderr
    report = report_at(run_env["HARNESS_REPORT_PATH"])
    assert (report["tasks"], report["failed"]) == (2, 2)
    assert (report["costUsd"], report["outputTokens"]) == (0, 0)
    assert model_calls(fake) == 4, "each task's call and its one retry"


def test_missing_credentials_fail_every_task_without_a_call(
    fake: FakeModelAPI, run_env: dict[str, str]
) -> None:
    env = {k: v for k, v in run_env.items() if k != "ANTHROPIC_API_KEY"}
    result = run_process({**env, "HARNESS_RUN_TASKS": "3"})
    assert result.returncode == 1, result.stderr
    report = report_at(run_env["HARNESS_REPORT_PATH"])
    assert (report["tasks"], report["failed"]) == (3, 3)
    assert model_calls(fake) == 0
    assert "tasks cannot run" in result.stderr


def test_an_unwritable_report_path_prints_the_report_on_stdout(
    fake: FakeModelAPI, run_env: dict[str, str], tmp_path: Path
) -> None:
    fake.set_model(MODEL, TOKENS)
    path = tmp_path / "no-such-dir" / "termination-log"
    result = run_process({**run_env, "HARNESS_REPORT_PATH": str(path)})
    assert result.returncode == 0, result.stderr
    assert not path.exists()
    report = json.loads(result.stdout)
    assert (report["tasks"], report["failed"], report["outputTokens"]) == (2, 0, 40 * 4)
    warning = next(
        json.loads(line)
        for line in result.stderr.splitlines()
        if "cannot write the run report" in line
    )
    assert warning["path"] == str(path)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "+2", "1_000", "2000000"])
def test_run_tasks_must_be_a_positive_integer(value: str) -> None:
    env = {"ANTHROPIC_MODEL": MODEL, "HARNESS_RUN_TASKS": value}
    with pytest.raises(ConfigError, match="HARNESS_RUN_TASKS"):
        load_config(env)


def test_run_mode_settings() -> None:
    config = load_config({"ANTHROPIC_MODEL": MODEL})
    assert config.run_tasks is None
    assert config.report_path == "/dev/termination-log"
    assert config.run_prompt
    config = load_config(
        {
            "ANTHROPIC_MODEL": MODEL,
            "HARNESS_RUN_TASKS": "3",
            "HARNESS_RUN_PROMPT": "Add 2 and 2.",
            "HARNESS_REPORT_PATH": "/tmp/report",
        }
    )
    assert (config.run_tasks, config.run_prompt, config.report_path) == (
        3,
        "Add 2 and 2.",
        "/tmp/report",
    )
    with pytest.raises(ConfigError, match="HARNESS_RUN_TASKS and HARNESS_QUEUE_URL"):
        load_config(
            {"ANTHROPIC_MODEL": MODEL, "HARNESS_RUN_TASKS": "1", "HARNESS_QUEUE_URL": "http://q"}
        )


def test_an_invalid_run_tasks_value_exits_2_naming_the_variable(
    run_env: dict[str, str],
) -> None:
    result = run_process({**run_env, "HARNESS_RUN_TASKS": "0"})
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert "HARNESS_RUN_TASKS" in entry["message"]
    assert not Path(run_env["HARNESS_REPORT_PATH"]).exists()


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_metrics_are_served_while_the_run_runs_and_do_not_hold_the_exit(
    fake: FakeModelAPI, run_env: dict[str, str]
) -> None:
    fake.set_model(MODEL, ModelBehaviour(latency_seconds=1.0))
    process = HarnessProcess({**run_env, "HARNESS_RUN_TASKS": "1"})
    try:
        api = process.wait_for("listening", listener="api")
        metrics = process.wait_for("listening", listener="metrics")
        metrics_url = f"http://127.0.0.1:{metrics['port']}"
        deadline = time.monotonic() + 5
        while scrape(metrics_url).get("harness_inflight_tasks") != 1:
            assert time.monotonic() < deadline, "the task never showed in /metrics"
            time.sleep(0.02)
        # Probes answer; the task API does not exist in run mode.
        with urllib.request.urlopen(f"http://127.0.0.1:{api['port']}/ready", timeout=5) as r:
            assert r.status == 200
        request = urllib.request.Request(
            f"http://127.0.0.1:{api['port']}/v1/tasks", data=b'{"prompt": "x"}', method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code in (404, 405)
        assert process.proc.wait(timeout=15) == 0
        process.wait_for("run finished", failed=0)
    finally:
        process.close()


def test_sigterm_ends_the_run_with_a_report_of_what_was_done(
    fake: FakeModelAPI, run_env: dict[str, str]
) -> None:
    fake.set_model(MODEL, ModelBehaviour(latency_seconds=30))
    process = HarnessProcess(
        {
            **run_env,
            "HARNESS_RUN_TASKS": "3",
            "HARNESS_MAX_CONCURRENCY": "1",
            "HARNESS_DRAIN_SECONDS": "0.2",
        }
    )
    try:
        metrics = process.wait_for("listening", listener="metrics")
        metrics_url = f"http://127.0.0.1:{metrics['port']}"
        deadline = time.monotonic() + 5
        while scrape(metrics_url).get("harness_inflight_tasks") != 1:
            assert time.monotonic() < deadline, "the first task never started"
            time.sleep(0.02)
        sent_at = time.monotonic()
        process.terminate()
        assert process.proc.wait(timeout=10) == 1
        assert time.monotonic() - sent_at < 5, "not the model's 30 s"
        process.wait_for("task finished", outcome="cancelled")
        process.wait_for("run finished", tasks=3, failed=3)
    finally:
        process.close()
    report = report_at(run_env["HARNESS_REPORT_PATH"])
    assert (report["tasks"], report["failed"]) == (3, 3)


def test_report_cost_and_tokens_match_the_harness_counters(
    fake: FakeModelAPI, setenv: Setenv
) -> None:
    fake.set_model(MODEL, TOKENS)
    setenv(HARNESS_MAX_CONCURRENCY="2")

    async def scenario() -> tuple[RunReport, Harness]:
        harness = Harness(load_config(os.environ), os.environ)
        try:
            return await run_tasks(harness, 3, "What is 1 + 2?"), harness
        finally:
            await harness.close()

    report, harness = asyncio.run(scenario())
    assert (report.tasks, report.failed) == (3, 0)
    labels = {"provider": "anthropic", "model": MODEL}
    assert report.cost_usd == pytest.approx(sample(harness, "harness_cost_usd_total", **labels))
    assert report.usage.output == sample(harness, "harness_tokens_total", **labels, type="output")
    assert report.usage.input == sample(harness, "harness_tokens_total", **labels, type="input")
    assert sample(harness, "harness_tasks_total", outcome="success", error_class="") == 3
    assert report.as_json()["outputTokens"] == 40 * 2 * 3

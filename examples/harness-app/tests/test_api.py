"""The task API end to end: the real app and the real SDK against the fake model API."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest
from fakeapi import FakeModelAPI, Fault, ModelBehaviour
from prometheus_client.parser import text_string_to_metric_families

import harness_app
from apptest import KEY, MODEL, Setenv, run, sample, serving, wait_until

LLM = {"provider": "anthropic", "model": MODEL}
METERED = ModelBehaviour(
    tool_turns=2,
    input_tokens=1000,
    output_tokens=50,
    cache_read_input_tokens=200,
    cache_creation_input_tokens=100,
)
# Sonnet 4.x: $3 input, $15 output, $0.30 cache read, $3.75 cache write per million tokens.
COST_PER_CALL = (1000 * 3 + 50 * 15 + 200 * 0.3 + 100 * 3.75) / 1_000_000


def messages(api: FakeModelAPI) -> list[int]:
    """Statuses of the fake's /v1/messages requests, in order."""
    return [r.status for r in api.requests() if r.endpoint == "messages"]


def test_task_with_tool_turns_is_metered(fake: FakeModelAPI, setenv: Setenv) -> None:
    fake.set_model(MODEL, METERED)
    setenv()

    async def scenario() -> None:
        async with serving() as (harness, client):
            response = await client.post("/v1/tasks", json={"prompt": "add one and one"})
            assert response.status == 200
            body = await response.json()
            assert body["outcome"] == "success"
            assert body["text"] == "done"
            assert body["turns"] == 3
            assert body["tool_calls"] == 2
            assert body["usage"] == {
                "input_tokens": 3000,
                "output_tokens": 150,
                "cache_read_input_tokens": 600,
                "cache_creation_input_tokens": 300,
            }
            assert body["cost_usd"] == pytest.approx(3 * COST_PER_CALL)
            assert (body["model"], body["provider"]) == (MODEL, "anthropic")

            for kind, tokens in [
                ("input", 3000),
                ("output", 150),
                ("cache_read", 600),
                ("cache_creation", 300),
            ]:
                assert sample(harness, "harness_tokens_total", **LLM, type=kind) == tokens
            assert sample(harness, "harness_cost_usd_total", **LLM) == pytest.approx(
                3 * COST_PER_CALL
            )
            assert sample(harness, "harness_task_cost_usd_sum") == pytest.approx(3 * COST_PER_CALL)
            assert sample(harness, "harness_task_output_tokens_sum") == 150
            assert sample(harness, "harness_task_output_tokens_count") == 1
            assert sample(harness, "harness_task_turns_sum") == 3
            assert sample(harness, "harness_task_turns_bucket", le="2.0") == 0
            assert sample(harness, "harness_task_turns_bucket", le="4.0") == 1
            assert sample(harness, "harness_tool_calls_total", tool="add", outcome="success") == 2
            assert sample(harness, "harness_tasks_total", outcome="success", error_class="") == 1
            assert sample(harness, "harness_llm_requests_total", **LLM, outcome="success") == 3
            route = "/v1/tasks"
            assert sample(harness, "harness_requests_total", route=route, outcome="success") == 1
            assert sample(harness, "harness_request_duration_seconds_count", route=route) == 1
            assert sample(harness, "harness_task_duration_seconds_count") == 1

            # The exposition itself, as Prometheus scrapes it.
            text = await (await client.get("/metrics")).text()
            families = {f.name: f for f in text_string_to_metric_families(text)}
            (info,) = families["harness_build_info"].samples
            assert info.value == 1
            assert info.labels["model"] == MODEL
            assert info.labels["provider"] == "anthropic"
            assert info.labels["sdk_version"] == "2.12.0"
            assert len(info.labels["prompt_sha"]) == 12

    run(scenario())
    sent = [r for r in fake.requests() if r.endpoint == "messages"]
    assert [(r.model, r.credential, r.stream, r.status) for r in sent] == [
        (MODEL, KEY, True, 200)
    ] * 3


def test_time_to_first_token_is_observed_when_streaming(fake: FakeModelAPI, setenv: Setenv) -> None:
    fake.set_model(MODEL, ModelBehaviour(tool_turns=1, latency_seconds=0.05))
    setenv()

    async def scenario() -> None:
        async with serving() as (harness, client):
            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 200
            assert sample(harness, "harness_time_to_first_token_seconds_count") == 2
            assert sample(harness, "harness_time_to_first_token_seconds_sum") >= 0.1
            assert sample(harness, "harness_time_to_first_token_seconds_bucket", le="0.025") == 0

    run(scenario())
    assert all(r.stream for r in fake.requests())


def test_no_streaming_no_time_to_first_token(fake: FakeModelAPI, setenv: Setenv) -> None:
    setenv(HARNESS_STREAM="false")

    async def scenario() -> None:
        async with serving() as (harness, client):
            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 200
            assert sample(harness, "harness_time_to_first_token_seconds_count") == 0

    run(scenario())
    assert [r.stream for r in fake.requests()] == [False]


def test_rate_limit_is_retried_after_retry_after(
    fake: FakeModelAPI, setenv: Setenv, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault(status=429, count=2, retry_after=0.1))
    setenv()

    async def scenario() -> None:
        async with serving() as (harness, client):
            started = time.monotonic()
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            elapsed = time.monotonic() - started
            assert response.status == 200
            assert elapsed >= 0.2  # waited the 0.1 s the provider asked for, twice
            retries = sample(harness, "harness_llm_retries_total", **LLM, reason="rate_limit")
            assert retries == 2
            errors = sample(harness, "harness_llm_errors_total", **LLM, error_class="rate_limit")
            assert errors == 2
            assert sample(harness, "harness_llm_requests_total", **LLM, outcome="error") == 2
            assert sample(harness, "harness_llm_requests_total", **LLM, outcome="success") == 1

    run(scenario())
    assert messages(fake) == [429, 429, 200]
    failures = [r for r in caplog.records if r.msg == "model call failed"]
    waits = [getattr(r, "harness_fields", {}).get("retry_in") for r in failures]
    assert waits == [0.1, 0.1]  # the provider's retry-after, not the jittered backoff


def test_overloaded_is_classified_and_never_unready(fake: FakeModelAPI, setenv: Setenv) -> None:
    setenv(HARNESS_MAX_RETRIES="1", HARNESS_TASK_TIMEOUT_SECONDS="1")

    async def scenario() -> None:
        async with serving() as (harness, client):
            fake.inject(Fault(status=529, count=1))
            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 200
            overloaded = {**LLM, "error_class": "overloaded"}
            assert sample(harness, "harness_llm_errors_total", **overloaded) == 1
            assert sample(harness, "harness_llm_retries_total", **LLM, reason="overloaded") == 1
            assert (await client.get("/ready")).status == 200

            # A wait past the task's deadline is not worth it: the task fails as overloaded
            # at once, passing the provider's Retry-After on to the caller.
            fake.inject(Fault(status=529, count=1, retry_after=1.5))
            started = time.monotonic()
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            assert time.monotonic() - started < 0.5
            assert response.status == 503
            assert response.headers["Retry-After"] == "2"
            body = await response.json()
            assert (body["outcome"], body["error_class"]) == ("error", "overloaded")
            failed = {"outcome": "error", "error_class": "overloaded"}
            assert sample(harness, "harness_tasks_total", **failed) == 1
            route = "/v1/tasks"
            assert sample(harness, "harness_requests_total", route=route, outcome="error") == 1
            assert (await client.get("/ready")).status == 200

            # Other provider outages do not touch readiness either.
            fake.inject(Fault(status=500, count=2))
            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 502
            fake.inject(Fault(status=429, count=2))
            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 503
            assert (await client.get("/ready")).status == 200
            errors = sample(harness, "harness_llm_errors_total", **LLM, error_class="server_error")
            assert errors == 2

    run(scenario())
    assert messages(fake) == [529, 200, 529, 500, 500, 429, 429]


def test_spend_limit_is_not_retried(fake: FakeModelAPI, setenv: Setenv) -> None:
    fake.inject(Fault(status=429, count=5, error_code="enforced_spend_limit_reached"))
    setenv()

    async def scenario() -> None:
        async with serving() as (harness, client):
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            assert response.status == 502
            body = await response.json()
            assert body["error_class"] == "spend_limit"
            spend = {**LLM, "error_class": "spend_limit"}
            assert sample(harness, "harness_llm_errors_total", **spend) == 1
            assert sample(harness, "harness_llm_errors_total", **LLM, error_class="rate_limit") == 0
            assert sample(harness, "harness_llm_retries_total", **LLM, reason="spend_limit") == 0
            assert sample(
                harness, "harness_tasks_total", outcome="error", error_class="spend_limit"
            )

    run(scenario())
    assert messages(fake) == [429]


def test_rejected_credentials_make_unready_until_a_success(
    fake: FakeModelAPI, setenv: Setenv
) -> None:
    setenv()

    async def scenario() -> None:
        async with serving() as (_, client):
            assert (await client.get("/ready")).status == 200
            fake.inject(Fault(status=401))
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            assert response.status == 502
            assert (await response.json())["error_class"] == "auth"
            ready = await client.get("/ready")
            assert ready.status == 503
            assert any("401" in reason for reason in (await ready.json())["reasons"])
            assert (await client.get("/health")).status == 200  # liveness is unaffected

            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 200
            assert (await client.get("/ready")).status == 200

            fake.inject(Fault(status=403))
            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 502
            assert (await client.get("/ready")).status == 503

    run(scenario())
    assert messages(fake) == [401, 200, 403]  # neither 401 nor 403 is retried


def test_concurrency_limit_answers_429_while_full(fake: FakeModelAPI, setenv: Setenv) -> None:
    fake.set_model(MODEL, ModelBehaviour(latency_seconds=0.3))
    setenv(HARNESS_MAX_CONCURRENCY="2")

    async def scenario() -> None:
        async with serving() as (harness, client):
            slow = [
                asyncio.create_task(client.post("/v1/tasks", json={"prompt": "x"}))
                for _ in range(2)
            ]
            await wait_until(lambda: sample(harness, "harness_inflight_tasks") == 2)
            started = time.monotonic()
            rejected = await client.post("/v1/tasks", json={"prompt": "x"})
            assert time.monotonic() - started < 0.2  # at once, not queued
            assert rejected.status == 429
            assert rejected.headers["Retry-After"] == "1"
            assert [r.status for r in await asyncio.gather(*slow)] == [200, 200]
            assert sample(harness, "harness_inflight_tasks") == 0
            route = "/v1/tasks"
            assert (
                sample(harness, "harness_requests_total", route=route, outcome="client_error") == 1
            )
            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 200

    run(scenario())


def test_max_turns_cap(fake: FakeModelAPI, setenv: Setenv) -> None:
    fake.set_model(MODEL, ModelBehaviour(tool_turns=10))
    setenv(HARNESS_MAX_TURNS="3")

    async def scenario() -> None:
        async with serving() as (harness, client):
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            assert response.status == 200
            body = await response.json()
            assert (body["outcome"], body["turns"]) == ("max_turns", 3)
            # A caller may lower the cap, not raise it.
            lower = await (
                await client.post("/v1/tasks", json={"prompt": "x", "max_turns": 1})
            ).json()
            assert (lower["outcome"], lower["turns"]) == ("max_turns", 1)
            higher = await (
                await client.post("/v1/tasks", json={"prompt": "x", "max_turns": 50})
            ).json()
            assert (higher["outcome"], higher["turns"]) == ("max_turns", 3)
            assert sample(harness, "harness_tasks_total", outcome="max_turns", error_class="") == 3

    run(scenario())
    assert len(messages(fake)) == 3 + 1 + 3


def test_cost_cap(fake: FakeModelAPI, setenv: Setenv) -> None:
    fake.set_model(MODEL, METERED)
    setenv(HARNESS_MAX_TASK_COST_USD="0.004")  # one call costs 0.004185

    async def scenario() -> None:
        async with serving() as (harness, client):
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            assert response.status == 200
            body = await response.json()
            assert (body["outcome"], body["turns"]) == ("budget_exceeded", 1)
            assert body["cost_usd"] == pytest.approx(COST_PER_CALL)
            outcome = {"outcome": "budget_exceeded", "error_class": ""}
            assert sample(harness, "harness_tasks_total", **outcome) == 1

    run(scenario())
    assert len(messages(fake)) == 1


def test_task_timeout(fake: FakeModelAPI, setenv: Setenv) -> None:
    fake.set_model(MODEL, ModelBehaviour(latency_seconds=5.0))
    setenv(HARNESS_TASK_TIMEOUT_SECONDS="0.3")

    async def scenario() -> None:
        async with serving() as (harness, client):
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            assert response.status == 504
            assert (await response.json())["outcome"] == "timeout"
            assert sample(harness, "harness_tasks_total", outcome="timeout", error_class="") == 1
            assert sample(harness, "harness_inflight_tasks") == 0

    run(scenario())


def test_bad_requests_are_client_errors(setenv: Setenv) -> None:
    setenv()

    async def scenario() -> None:
        async with serving() as (harness, client):
            for body in (
                {},
                {"prompt": ""},
                {"prompt": "x", "max_turns": 0},
                {"prompt": "x", "y": 1},
            ):
                assert (await client.post("/v1/tasks", json=body)).status == 400
            assert (await client.post("/v1/tasks", data=b"{not json")).status == 400
            route = "/v1/tasks"
            assert (
                sample(harness, "harness_requests_total", route=route, outcome="client_error") == 5
            )
            assert sample(harness, "harness_tasks_total", outcome="success", error_class="") == 0

    run(scenario())


def test_info_shows_config_and_no_secrets(fake: FakeModelAPI, setenv: Setenv) -> None:
    secret_url = fake.url.replace("http://", "http://user:hunter2@") + "/?token=hunter3"
    setenv(ANTHROPIC_BASE_URL=secret_url, HARNESS_MAX_CONCURRENCY="7")

    async def scenario() -> None:
        async with serving() as (_, client):
            response = await client.get("/info")
            text = await response.text()
            info = await response.json()
            assert info["provider"] == "anthropic"
            assert info["model"] == MODEL
            assert info["base_url"] == fake.url + "/"
            assert info["credential_env"] == ["ANTHROPIC_API_KEY"]
            assert info["max_concurrency"] == 7
            assert len(info["system_prompt_sha256"]) == 12
            metrics = await (await client.get("/metrics")).text()
            for secret in (KEY, "hunter2", "hunter3", "user:"):
                assert secret not in text
                assert secret not in metrics

    run(scenario())


def test_prompt_file_is_hashed(setenv: Setenv, tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You review pull requests.")
    setenv(HARNESS_SYSTEM_PROMPT_FILE=str(prompt))

    async def scenario() -> None:
        async with serving() as (harness, client):
            info = await (await client.get("/info")).json()
            digest = hashlib.sha256(b"You review pull requests.").hexdigest()[:12]
            assert info["system_prompt_sha256"] == digest
            assert info["system_prompt_source"] == str(prompt)
            build = {"prompt_sha": digest, "provider": "anthropic", "model": MODEL}
            labels = {**build, "version": harness_app.__version__, "sdk_version": "2.12.0"}
            assert sample(harness, "harness_build_info", **labels) == 1
            assert (await client.get("/ready")).status == 200

    run(scenario())


def test_unreadable_prompt_file_fails_readiness(setenv: Setenv) -> None:
    setenv(HARNESS_SYSTEM_PROMPT_FILE="/nonexistent/prompt.txt")

    async def scenario() -> None:
        async with serving() as (_, client):
            ready = await client.get("/ready")
            assert ready.status == 503
            assert "HARNESS_SYSTEM_PROMPT_FILE" in (await ready.json())["reasons"][0]
            assert (await client.post("/v1/tasks", json={"prompt": "x"})).status == 503
            assert (await client.get("/health")).status == 200

    run(scenario())


def test_missing_credentials_fail_readiness(fake: FakeModelAPI, setenv: Setenv) -> None:
    setenv(ANTHROPIC_API_KEY=None)

    async def scenario() -> None:
        async with serving() as (_, client):
            ready = await client.get("/ready")
            assert ready.status == 503
            assert "ANTHROPIC_API_KEY" in (await ready.json())["reasons"][0]
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            assert response.status == 503
            assert (await response.json())["error_class"] == "auth"

    run(scenario())
    assert messages(fake) == []


def test_the_kill_switch_refuses_new_tasks_and_keeps_the_pod_ready(
    fake: FakeModelAPI, setenv: Setenv, tmp_path: Path
) -> None:
    switch = tmp_path / "stop"
    setenv(HARNESS_KILL_SWITCH_FILE=str(switch))

    async def scenario() -> None:
        async with serving() as (_harness, client):
            assert (
                await client.post("/v1/tasks", json={"prompt": "hi"})
            ).status == 200  # no file yet
            switch.write_text("true")
            stopped = await client.post("/v1/tasks", json={"prompt": "hi"})
            assert stopped.status == 503
            assert stopped.headers["Retry-After"] == "60"
            assert (await client.get("/ready")).status == 200, "readiness must not follow it"
            switch.write_text("false")
            assert (await client.post("/v1/tasks", json={"prompt": "hi"})).status == 200

    run(scenario())
    assert len([r for r in fake.requests() if r.endpoint == "messages"]) >= 2

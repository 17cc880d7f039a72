"""Configuration, pricing, error classification and tools, without a server."""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any

import httpx2
import pytest
from anthropic import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    EnforcedSpendLimitReachedError,
    GatewayTimeoutError,
    InternalServerError,
    OverloadedError,
    RateLimitError,
)
from anthropic.types import ToolUseBlock

from harness_app.agent import Agent, AgentSettings, ProviderHealth
from harness_app.config import ConfigError, Provider, load_config
from harness_app.errors import backoff, classify, is_retryable, retry_after
from harness_app.metrics import Metrics
from harness_app.pricing import (
    PricingError,
    TokenUsage,
    builtin_price,
    cost_usd,
    parse_pricing,
)
from harness_app.providers import build_client, public_url
from harness_app.tools import ToolError, run_tool

BASE = {"ANTHROPIC_MODEL": "claude-sonnet-4-5-20250929"}


# --- config ------------------------------------------------------------------------------


def test_defaults() -> None:
    config = load_config(BASE)
    assert config.provider is Provider.ANTHROPIC
    assert (config.host, config.port, config.metrics_port) == ("0.0.0.0", 8080, None)
    assert (config.max_concurrency, config.max_turns, config.max_retries) == (4, 8, 3)
    assert (config.max_task_cost_usd, config.task_timeout_seconds) == (0.5, 120.0)
    assert (config.drain_seconds, config.stream) == (60.0, True)
    assert config.pricing_source == "built-in"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HARNESS_MODEL_PROVIDER": "bedrock", "AWS_REGION": "eu-west-1"}, Provider.BEDROCK),
        ({"CLAUDE_CODE_USE_VERTEX": "1", "CLOUD_ML_REGION": "global"}, Provider.VERTEX),
        (
            {"CLAUDE_CODE_USE_FOUNDRY": "true", "ANTHROPIC_FOUNDRY_RESOURCE": "acme"},
            Provider.FOUNDRY,
        ),
        ({"CLAUDE_CODE_USE_BEDROCK": "0"}, Provider.ANTHROPIC),
        # HARNESS_MODEL_PROVIDER wins over Claude Code's switches.
        (
            {"HARNESS_MODEL_PROVIDER": "anthropic", "CLAUDE_CODE_USE_BEDROCK": "1"},
            Provider.ANTHROPIC,
        ),
    ],
)
def test_provider_selection(env: dict[str, str], expected: Provider) -> None:
    assert load_config({**BASE, **env}).provider is expected


def test_separate_metrics_port() -> None:
    assert load_config({**BASE, "HARNESS_METRICS_PORT": "9090"}).metrics_port == 9090
    assert load_config({**BASE, "HARNESS_METRICS_PORT": "8080"}).metrics_port is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ANTHROPIC_MODEL": ""}, "ANTHROPIC_MODEL"),
        ({"HARNESS_MODEL_PROVIDER": "azure"}, "HARNESS_MODEL_PROVIDER"),
        ({"CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDE_CODE_USE_VERTEX": "1"}, "CLAUDE_CODE_USE_"),
        ({"CLAUDE_CODE_USE_BEDROCK": "sure"}, "CLAUDE_CODE_USE_BEDROCK"),
        ({"HARNESS_PORT": "70000"}, "HARNESS_PORT"),
        ({"HARNESS_METRICS_PORT": "x"}, "HARNESS_METRICS_PORT"),
        ({"HARNESS_MAX_CONCURRENCY": "four"}, "HARNESS_MAX_CONCURRENCY"),
        ({"HARNESS_MAX_CONCURRENCY": "0"}, "HARNESS_MAX_CONCURRENCY"),
        ({"HARNESS_MAX_TURNS": "-1"}, "HARNESS_MAX_TURNS"),
        ({"HARNESS_MAX_TASK_COST_USD": "0"}, "HARNESS_MAX_TASK_COST_USD"),
        ({"HARNESS_TASK_TIMEOUT_SECONDS": "nan"}, "HARNESS_TASK_TIMEOUT_SECONDS"),
        ({"HARNESS_MAX_RETRIES": "1.5"}, "HARNESS_MAX_RETRIES"),
        ({"HARNESS_DRAIN_SECONDS": "-5"}, "HARNESS_DRAIN_SECONDS"),
        ({"HARNESS_STREAM": "maybe"}, "HARNESS_STREAM"),
        ({"HARNESS_PRICING": "{"}, "HARNESS_PRICING"),
        ({"HARNESS_PRICING": '{"input": 3}'}, "HARNESS_PRICING"),
        ({"HARNESS_PRICING": '{"input": 3, "output": 15, "cache": 1}'}, "HARNESS_PRICING"),
        ({"ANTHROPIC_MODEL": "my-finetune-v7"}, "HARNESS_PRICING"),
        ({"ANTHROPIC_BASE_URL": "ftp://gateway"}, "ANTHROPIC_BASE_URL"),
        ({"HARNESS_MODEL_PROVIDER": "gateway"}, "ANTHROPIC_BASE_URL"),
        ({"HARNESS_MODEL_PROVIDER": "bedrock"}, "AWS_REGION"),
        ({"HARNESS_MODEL_PROVIDER": "vertex"}, "CLOUD_ML_REGION"),
        ({"HARNESS_MODEL_PROVIDER": "foundry"}, "ANTHROPIC_FOUNDRY_RESOURCE"),
        (
            {
                "HARNESS_MODEL_PROVIDER": "foundry",
                "ANTHROPIC_FOUNDRY_RESOURCE": "acme",
                "ANTHROPIC_FOUNDRY_BASE_URL": "https://acme.example/anthropic/",
            },
            "ANTHROPIC_FOUNDRY_BASE_URL",
        ),
    ],
)
def test_config_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_config({**BASE, **env})


# --- pricing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "input_price", "output_price"),
    [
        ("claude-sonnet-4-5-20250929", 3.0, 15.0),
        ("claude-sonnet-4-5@20250929", 3.0, 15.0),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", 3.0, 15.0),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", 3.0, 15.0),
        (
            "arn:aws:bedrock:us-east-1:1:inference-profile/global.anthropic.claude-haiku-4-5-20251001-v1:0",
            1.0,
            5.0,
        ),
        ("claude-opus-4-1-20250805", 15.0, 75.0),
        ("claude-opus-4-1@20250805", 15.0, 75.0),
        ("claude-opus-4-5-20251101", 5.0, 25.0),
        ("claude-haiku-4-5", 1.0, 5.0),
        ("claude-3-5-haiku-20241022", 0.8, 4.0),
    ],
)
def test_builtin_prices(model: str, input_price: float, output_price: float) -> None:
    price = builtin_price(model)
    assert price is not None
    assert (price.input, price.output) == (input_price, output_price)
    assert price.cache_read == pytest.approx(input_price * 0.1)
    assert price.cache_write == pytest.approx(input_price * 1.25)


@pytest.mark.parametrize("model", ["claude-opus-4-8", "claude-sonnet-5", "my-model", "claude"])
def test_unlisted_models_have_no_price(model: str) -> None:
    assert builtin_price(model) is None


def test_pricing_override_and_cost() -> None:
    price = parse_pricing('{"input": 2, "output": 10}')
    assert (price.cache_read, price.cache_write) == (0.2, 2.5)
    explicit = parse_pricing('{"input": 3.0, "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75}')
    usage = TokenUsage(input=1_000_000, output=100_000, cache_read=10_000, cache_creation=1_000)
    assert cost_usd(usage, explicit) == pytest.approx(3.0 + 1.5 + 0.003 + 0.00375)
    with pytest.raises(PricingError, match="output"):
        parse_pricing('{"input": 1, "output": -1}')
    config = load_config({**BASE, "HARNESS_PRICING": '{"input": 2, "output": 10}'})
    assert (config.price, config.pricing_source) == (price, "HARNESS_PRICING")


# --- errors ------------------------------------------------------------------------------

REQUEST = httpx2.Request("POST", "https://api.example/v1/messages")


def _status_error(
    cls: type[APIStatusError],
    status: int,
    *,
    error_type: str = "api_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> APIStatusError:
    error: dict[str, Any] = {"type": error_type, "message": "m"}
    if code is not None:
        error["details"] = {"error_code": code}
    body = {"type": "error", "error": error}
    response = httpx2.Response(status, headers=headers or {}, json=body, request=REQUEST)
    return cls("m", response=response, body=body)


def test_classification_and_retry_policy() -> None:
    overloaded = _status_error(OverloadedError, 529, error_type="overloaded_error")
    assert isinstance(overloaded, InternalServerError)  # why 529 is checked before 5xx
    assert (classify(overloaded), is_retryable(overloaded)) == ("overloaded", True)
    spend = _status_error(EnforcedSpendLimitReachedError, 429, code="enforced_spend_limit_reached")
    assert isinstance(spend, RateLimitError)  # why spend limits are checked first
    assert (classify(spend), is_retryable(spend)) == ("spend_limit", False)
    limited = _status_error(RateLimitError, 429, error_type="rate_limit_error")
    assert (classify(limited), is_retryable(limited)) == ("rate_limit", True)
    auth = _status_error(AuthenticationError, 401, error_type="authentication_error")
    assert (classify(auth), is_retryable(auth)) == ("auth", False)
    gateway_timeout = _status_error(GatewayTimeoutError, 504)
    assert (classify(gateway_timeout), is_retryable(gateway_timeout)) == ("timeout", True)
    server = _status_error(InternalServerError, 500)
    assert (classify(server), is_retryable(server)) == ("server_error", True)
    conflict = _status_error(APIStatusError, 409, error_type="conflict_error")
    assert (classify(conflict), is_retryable(conflict)) == ("other", True)
    told_not_to = _status_error(InternalServerError, 500, headers={"x-should-retry": "false"})
    assert not is_retryable(told_not_to)
    assert (classify(APITimeoutError(REQUEST)), is_retryable(APITimeoutError(REQUEST))) == (
        "timeout",
        True,
    )
    dropped = APIConnectionError(request=REQUEST)
    assert (classify(dropped), is_retryable(dropped)) == ("connection", True)
    assert (classify(ValueError("bug")), is_retryable(ValueError("bug"))) == ("other", False)


def test_errors_inside_a_stream_are_classified_by_type() -> None:
    # An `error` event mid-stream is raised with the stream's status, 200.
    mid_stream = _status_error(APIStatusError, 200, error_type="overloaded_error")
    assert (classify(mid_stream), is_retryable(mid_stream)) == ("overloaded", True)
    spend = _status_error(
        APIStatusError, 200, error_type="rate_limit_error", code="enforced_spend_limit_reached"
    )
    assert (classify(spend), is_retryable(spend)) == ("spend_limit", False)
    invalid = _status_error(APIStatusError, 200, error_type="invalid_request_error")
    assert (classify(invalid), is_retryable(invalid)) == ("bad_request", False)


def test_retry_after_headers_and_backoff() -> None:
    def hinted(headers: dict[str, str]) -> float | None:
        return retry_after(_status_error(RateLimitError, 429, headers=headers))

    assert hinted({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert hinted({"retry-after": "2"}) == 2.0
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (hinted({"retry-after": date}) or 0) <= 30
    assert hinted({}) is None
    rng = random.Random(1)
    for attempt in range(10):
        delay = backoff(attempt, rng)
        assert 0 <= delay <= min(8.0, 0.25 * 2**attempt)
    assert max(backoff(10, rng) for _ in range(200)) > 4.0  # capped at 8 s, not at 0.25


def test_public_url_strips_secrets() -> None:
    assert public_url("https://u:p@gw.example:8443/v1?key=s#f") == "https://gw.example:8443/v1"


# --- tools -------------------------------------------------------------------------------


def test_tools() -> None:
    assert run_tool("add", {"a": 1, "b": 2.5}) == "3.5"
    assert run_tool("add", {"a": 2, "b": 2}) == "4"
    assert "canary" in run_tool("lookup", {"topic": "Canary"})
    for name, tool_input in [
        ("add", {"a": "1", "b": 2}),
        ("add", {"a": True, "b": 2}),
        ("lookup", {"topic": "weather"}),
        ("lookup", {}),
        ("shell", {"cmd": "ls"}),
        ("add", ["not", "an", "object"]),
    ]:
        with pytest.raises(ToolError):
            run_tool(name, tool_input)


def test_a_failing_tool_is_an_error_result_and_counted() -> None:
    config = load_config(BASE)
    metrics = Metrics(provider="anthropic", model=config.model)
    client = build_client(config.provider, task_timeout=1)
    settings = AgentSettings(config.model, "", config.price, 1.0, 0, stream=False)
    agent = Agent(client, settings, metrics, ProviderHealth())

    bad = ToolUseBlock(type="tool_use", id="toolu_1", name="add", input={"a": "one", "b": 2})
    result = agent._run_tool(bad)
    assert result["is_error"] is True
    assert result["tool_use_id"] == "toolu_1"
    good = ToolUseBlock(type="tool_use", id="toolu_2", name="add", input={"a": 1, "b": 2})
    assert agent._run_tool(good) == {
        "type": "tool_result",
        "tool_use_id": "toolu_2",
        "content": "3",
    }
    unknown = ToolUseBlock(type="tool_use", id="toolu_3", name="rm", input={})
    assert agent._run_tool(unknown)["is_error"] is True

    def calls(tool: str, outcome: str) -> float | None:
        labels = {"tool": tool, "outcome": outcome}
        return metrics.registry.get_sample_value("harness_tool_calls_total", labels)

    assert (calls("add", "error"), calls("add", "success"), calls("unknown", "error")) == (1, 1, 1)

"""Each provider's SDK client, built from the environment alone, calls the fake the way
that provider's real endpoint is called (path, credential, model id)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from anthropic import AsyncAnthropicVertex
from fakeapi import FakeModelAPI, ModelBehaviour

from apptest import MODEL, Setenv, run, sample, serving
from harness_app.config import Provider, load_config
from harness_app.providers import build_client, check_credentials

BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def _cases(url: str) -> dict[str, tuple[dict[str, str | None], str, str, str]]:
    """name -> (environment, recorded provider, model id, credential the fake saw)."""
    return {
        "anthropic": ({}, "anthropic", MODEL, "sk-test-0123456789abcdef"),
        "gateway": (
            {
                "HARNESS_MODEL_PROVIDER": "gateway",
                "ANTHROPIC_API_KEY": None,
                "ANTHROPIC_AUTH_TOKEN": "gw-token",
            },
            "anthropic",
            MODEL,
            "gw-token",
        ),
        "bedrock": (
            {
                "CLAUDE_CODE_USE_BEDROCK": "1",  # Claude Code's switch, no HARNESS_MODEL_PROVIDER
                "ANTHROPIC_API_KEY": None,
                "ANTHROPIC_BASE_URL": None,
                "ANTHROPIC_MODEL": BEDROCK_MODEL,
                "AWS_REGION": "us-east-1",
                "AWS_BEARER_TOKEN_BEDROCK": "bedrock-token",
                "ANTHROPIC_BEDROCK_BASE_URL": url,
            },
            "bedrock",
            BEDROCK_MODEL,
            "bedrock-token",
        ),
        "foundry": (
            {
                "HARNESS_MODEL_PROVIDER": "foundry",
                "ANTHROPIC_API_KEY": None,
                "ANTHROPIC_BASE_URL": None,
                "ANTHROPIC_FOUNDRY_API_KEY": "foundry-key",
                "ANTHROPIC_FOUNDRY_BASE_URL": url + "/anthropic/",
            },
            "foundry",
            MODEL,
            "foundry-key",
        ),
    }


@pytest.mark.parametrize("name", ["anthropic", "gateway", "bedrock", "foundry"])
def test_provider_calls_go_through_its_client(
    name: str, fake: FakeModelAPI, setenv: Setenv
) -> None:
    env, recorded_provider, model, credential = _cases(fake.url)[name]
    fake.accept_key(credential)
    fake.set_model(MODEL, ModelBehaviour(tool_turns=1, input_tokens=100, output_tokens=10))
    setenv(**env)
    # Bedrock streams AWS event-stream frames, which need botocore (not in this image).
    streams = name != "bedrock" or importlib.util.find_spec("botocore") is not None

    async def scenario() -> None:
        async with serving() as (harness, client):
            assert (await client.get("/ready")).status == 200
            response = await client.post("/v1/tasks", json={"prompt": "x"})
            assert response.status == 200, await response.text()
            body = await response.json()
            assert (body["outcome"], body["turns"], body["provider"]) == ("success", 2, name)
            assert body["cost_usd"] == pytest.approx(2 * (100 * 3 + 10 * 15) / 1_000_000)
            info = await (await client.get("/info")).json()
            assert (info["provider"], info["model"], info["stream"]) == (name, model, streams)
            tokens = {"provider": name, "model": model, "type": "input"}
            assert sample(harness, "harness_tokens_total", **tokens) == 200

    run(scenario())
    sent = [r for r in fake.requests() if r.endpoint == "messages"]
    assert [(r.provider, r.model, r.credential, r.stream, r.status) for r in sent] == [
        (recorded_provider, model, credential, streams, 200)
    ] * 2


def test_vertex_client_reads_region_and_project(fake: FakeModelAPI, setenv: Setenv) -> None:
    # Construction only: a call would need Google credentials (ADC).
    setenv(
        CLAUDE_CODE_USE_VERTEX="1",
        ANTHROPIC_API_KEY=None,
        ANTHROPIC_BASE_URL=None,
        ANTHROPIC_MODEL="claude-sonnet-4-5@20250929",
        CLOUD_ML_REGION="us-east5",
        ANTHROPIC_VERTEX_PROJECT_ID="my-project",
        ANTHROPIC_VERTEX_BASE_URL=fake.url + "/v1",
    )
    config = load_config(os.environ)
    assert config.provider is Provider.VERTEX
    assert config.price.input == 3.0  # the Vertex id maps to Sonnet 4.5's price
    client = build_client(config.provider, task_timeout=10)
    assert isinstance(client, AsyncAnthropicVertex)
    assert client.region == "us-east5"
    assert client.project_id == "my-project"
    assert str(client.base_url) == fake.url + "/v1/"
    assert client.max_retries == 0

    async def scenario() -> None:
        async with serving() as (_, client):
            info = await (await client.get("/info")).json()
            assert (info["provider"], info["region"], info["project"]) == (
                "vertex",
                "us-east5",
                "my-project",
            )

    run(scenario())
    assert fake.requests() == []


def test_credential_presence_is_local(tmp_path: Path) -> None:
    assert not check_credentials(Provider.ANTHROPIC, {}).present
    assert check_credentials(Provider.GATEWAY, {"ANTHROPIC_AUTH_TOKEN": "t"}).present
    assert not check_credentials(Provider.FOUNDRY, {"ANTHROPIC_API_KEY": "k"}).present
    assert check_credentials(Provider.BEDROCK, {"AWS_BEARER_TOKEN_BEDROCK": "t"}).present
    wif = {
        "ANTHROPIC_FEDERATION_RULE_ID": "r",
        "ANTHROPIC_ORGANIZATION_ID": "o",
        "ANTHROPIC_IDENTITY_TOKEN_FILE": "/nonexistent/token",
    }
    missing = check_credentials(Provider.ANTHROPIC, wif)
    assert not missing.present
    assert "ANTHROPIC_IDENTITY_TOKEN_FILE" in missing.reason
    token = tmp_path / "token"
    token.write_text("jwt")  # a projected ServiceAccount token appears
    found = check_credentials(
        Provider.ANTHROPIC, {**wif, "ANTHROPIC_IDENTITY_TOKEN_FILE": str(token)}
    )
    assert found.present
    key_file = {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"}
    assert not check_credentials(Provider.VERTEX, key_file).present

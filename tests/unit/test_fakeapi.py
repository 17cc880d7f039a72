"""The fake model API, driven through the real anthropic SDK clients of all four provider
styles (first party, Bedrock, Vertex, Foundry) and through its HTTP control API."""

from __future__ import annotations

import base64
import json
import random
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account

from fakeapi import (
    FakeModelAPI,
    FakeModelAPIClient,
    Fault,
    ModelBehaviour,
    RecordedRequest,
    canonical_model_id,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-good"
MODEL = "claude-sonnet-4-6"
OTHER = "claude-haiku-4-5-20251001"
BEDROCK_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
VERTEX_MODEL = "claude-haiku-4-5@20251001"
SERVICE_ACCOUNT = "harness@proj.iam.gserviceaccount.com"
# 40 characters: the fake's ~4-characters-a-token estimate makes this 10 input tokens.
USER = [{"role": "user", "content": "x" * 40}]
READ_FILE = {
    "name": "read_file",
    "description": "Read a file",
    "input_schema": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    },
}
LIST_DIR = {"name": "list_dir", "input_schema": {"type": "object", "properties": {}}}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModelAPI]:
    with FakeModelAPI() as api:
        yield api


@pytest.fixture
def api(server: FakeModelAPI) -> FakeModelAPI:
    server.reset()
    server.accept_key(KEY)
    return server


@pytest.fixture
def client(api: FakeModelAPI) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=KEY, base_url=api.url, max_retries=0) as sdk:
        yield sdk


def bedrock(api: FakeModelAPI, key: str = KEY) -> anthropic.AnthropicBedrock:
    return anthropic.AnthropicBedrock(
        api_key=key, aws_region="us-east-1", base_url=api.url, max_retries=0
    )


def vertex(api: FakeModelAPI, **auth: Any) -> anthropic.AnthropicVertex:
    auth = auth or {"access_token": KEY}
    return anthropic.AnthropicVertex(
        region="us-east5", project_id="proj", base_url=api.url + "/v1", max_retries=0, **auth
    )


def foundry(api: FakeModelAPI) -> anthropic.AnthropicFoundry:
    return anthropic.AnthropicFoundry(api_key=KEY, base_url=api.url + "/anthropic/", max_retries=0)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def outcomes(records: list[RecordedRequest]) -> list[tuple[Any, ...]]:
    """Everything recorded but the arrival time."""
    return [
        (r.method, r.path, r.provider, r.endpoint, r.model, r.credential, r.stream, r.status)
        for r in records
    ]


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def decode_event_stream(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """An independent AWS event-stream decoder: check both CRCs, parse string headers."""
    frames = []
    while data:
        total, headers_length, prelude_crc = struct.unpack("!III", data[:12])
        assert prelude_crc == zlib.crc32(data[:8])
        message, data = data[:total], data[total:]
        assert len(message) == total
        assert struct.unpack("!I", message[-4:])[0] == zlib.crc32(message[:-4])
        raw, headers, i = message[12 : 12 + headers_length], {}, 0
        while i < len(raw):
            name_length = raw[i]
            name = raw[i + 1 : i + 1 + name_length].decode()
            i += 1 + name_length
            assert raw[i] == 7  # string value
            (value_length,) = struct.unpack("!H", raw[i + 1 : i + 3])
            headers[name] = raw[i + 3 : i + 3 + value_length].decode()
            i += 3 + value_length
        frames.append((headers, message[12 + headers_length : -4]))
    return frames


# -- first party ---------------------------------------------------------------------------


def test_first_party_message(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(
        MODEL,
        ModelBehaviour(
            text="hello there",
            input_tokens=11,
            output_tokens=7,
            cache_read_input_tokens=3,
            cache_creation_input_tokens=2,
        ),
    )
    before = time.time()
    message = client.messages.create(model=MODEL, max_tokens=64, messages=USER)

    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.role == "assistant"
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [
        ("text", "hello there")
    ]
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (11, 7)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (3, 2)
    [record] = api.requests()
    assert outcomes([record]) == [
        ("POST", "/v1/messages", "anthropic", "messages", MODEL, KEY, False, 200)
    ]
    assert before <= record.time <= time.time()


def test_first_party_stream(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(MODEL, ModelBehaviour(text="alpha beta gamma", output_tokens=9))

    events = list(client.messages.create(model=MODEL, max_tokens=64, messages=USER, stream=True))
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    with client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()

    assert texts == ["alpha ", "beta ", "gamma"]
    assert final.content[0].type == "text"
    assert final.content[0].text == "alpha beta gamma"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (10, 9)
    assert [(r.endpoint, r.stream, r.status) for r in api.requests()] == [
        ("messages", True, 200),
        ("messages", True, 200),
    ]


def test_tool_use_turns_until_enough_tool_results(
    api: FakeModelAPI, client: anthropic.Anthropic
) -> None:
    api.set_model(MODEL, ModelBehaviour(tool_turns=2, text="all read"))
    messages: list[Any] = list(USER)
    seen = []
    for _ in range(4):
        reply = client.messages.create(
            model=MODEL, max_tokens=64, messages=messages, tools=[READ_FILE, LIST_DIR]
        )
        seen.append(reply.stop_reason)
        if reply.stop_reason != "tool_use":
            break
        [block] = reply.content
        assert block.type == "tool_use"
        assert (block.name, block.input) == ("read_file", {"path": "fake"})
        assert block.id.startswith("toolu_")
        messages += [
            {"role": "assistant", "content": reply.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "ok"}],
            },
        ]

    assert seen == ["tool_use", "tool_use", "end_turn"]
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "all read"


def test_streamed_tool_use_sends_input_json_deltas(
    api: FakeModelAPI, client: anthropic.Anthropic
) -> None:
    api.set_model(MODEL, ModelBehaviour(tool_turns=1))
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=USER, tools=[READ_FILE]
    ) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()

    assert deltas == ["input_json_delta", "input_json_delta"]
    assert final.stop_reason == "tool_use"
    [block] = final.content
    assert block.type == "tool_use"
    assert (block.name, block.input) == ("read_file", {"path": "fake"})


def test_tool_turns_without_tools_answer_text(
    api: FakeModelAPI, client: anthropic.Anthropic
) -> None:
    api.set_model(MODEL, ModelBehaviour(tool_turns=3, text="no tools to call"))
    reply = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert reply.stop_reason == "end_turn"
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "no tools to call"


def test_count_tokens_first_party(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(MODEL)
    api.set_model(OTHER, ModelBehaviour(input_tokens=1234))

    assert client.messages.count_tokens(model=MODEL, messages=USER).input_tokens == 10
    system = "s" * 8  # two more tokens
    counted = client.messages.count_tokens(model=MODEL, system=system, messages=USER)
    assert counted.input_tokens == 12
    assert client.messages.count_tokens(model=OTHER, messages=USER).input_tokens == 1234
    assert outcomes(api.requests())[0] == (
        "POST",
        "/v1/messages/count_tokens",
        "anthropic",
        "count_tokens",
        MODEL,
        KEY,
        False,
        200,
    )


def test_models_retrieve_and_unknown(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(MODEL)
    info = client.models.retrieve(MODEL)
    assert (info.type, info.id, info.display_name) == ("model", MODEL, "Claude Sonnet 4.6")
    assert info.created_at.isoformat() == "2025-01-01T00:00:00+00:00"

    with pytest.raises(anthropic.NotFoundError) as caught:
        client.models.retrieve("claude-nonexistent-1")
    err = caught.value
    assert err.status_code == 404
    assert err.type == "not_found_error"
    assert err.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: claude-nonexistent-1"},
        "request_id": err.request_id,
    }
    assert err.request_id is not None
    assert err.request_id.startswith("req_")
    assert [(r.endpoint, r.model, r.status) for r in api.requests()] == [
        ("models.retrieve", MODEL, 200),
        ("models.retrieve", "claude-nonexistent-1", 404),
    ]


def test_models_list_pages(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    for name in ("claude-opus-4-6", MODEL, OTHER):
        api.set_model(name)
    page = client.models.list(limit=2)
    assert [m.id for m in page.data] == ["claude-opus-4-6", MODEL]
    assert page.has_more is True
    assert [m.id for m in client.models.list(limit=2)] == ["claude-opus-4-6", MODEL, OTHER]
    assert [m.display_name for m in client.models.list()] == [
        "Claude Opus 4.6",
        "Claude Sonnet 4.6",
        "Claude Haiku 4.5",
    ]
    paths = [r.path for r in api.requests()]
    assert paths == ["/v1/models", "/v1/models", "/v1/models", "/v1/models"]


# -- errors and faults ---------------------------------------------------------------------


def test_bad_key_is_authentication_error_without_echo(api: FakeModelAPI) -> None:
    api.set_model(MODEL)
    secret = "sk-test-wrong-0123456789"
    with (
        anthropic.Anthropic(api_key=secret, base_url=api.url, max_retries=0) as sdk,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        sdk.messages.create(model=MODEL, max_tokens=64, messages=USER)
    err = caught.value
    assert (err.status_code, err.type, err.api_message) == (
        401,
        "authentication_error",
        "invalid x-api-key",
    )
    assert secret not in err.response.text
    assert err.response.headers["content-type"].startswith("application/json")
    assert err.response.headers["request-id"] == err.body["request_id"]

    status, _, body = http("POST", api.url + "/v1/messages", json.dumps({}).encode())
    assert (status, json.loads(body)["error"]["message"]) == (401, "x-api-key header is required")
    assert [(r.credential, r.status) for r in api.requests()] == [(secret, 401), (None, 401)]


def test_revoked_key_is_rejected(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(MODEL)
    client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    api.revoke_key(KEY)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model=MODEL, max_tokens=64, messages=USER)


def test_deny_is_permission_denied_for_that_model_only(
    api: FakeModelAPI, client: anthropic.Anthropic
) -> None:
    api.set_model(MODEL)
    api.set_model(OTHER)
    api.deny(key=KEY, model=MODEL)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert (caught.value.status_code, caught.value.type) == (403, "permission_error")
    assert client.messages.create(model=OTHER, max_tokens=64, messages=USER).content
    # The denial covers the model under every provider's spelling of its id.
    with pytest.raises(anthropic.PermissionDeniedError):
        bedrock(api).messages.create(model=f"anthropic.{MODEL}-v1:0", max_tokens=64, messages=USER)


def test_rate_limit_with_retry_after_then_recovers(
    api: FakeModelAPI, client: anthropic.Anthropic
) -> None:
    api.set_model(MODEL)
    api.set_model(OTHER)
    api.inject(Fault(status=429, count=2, model=MODEL, retry_after=1.0))

    assert client.messages.create(model=OTHER, max_tokens=64, messages=USER).content
    for _ in range(2):
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=MODEL, max_tokens=64, messages=USER)
        assert caught.value.response.headers["retry-after"] == "1"
        assert caught.value.type == "rate_limit_error"
        assert caught.value.error_code is None
    assert client.messages.create(model=MODEL, max_tokens=64, messages=USER).content
    assert [(r.model, r.status) for r in api.requests()] == [
        (OTHER, 200),
        (MODEL, 429),
        (MODEL, 429),
        (MODEL, 200),
    ]


def test_overloaded(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(MODEL)
    api.inject(Fault(status=529))
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert (caught.value.status_code, caught.value.type) == (529, "overloaded_error")
    assert "retry-after" not in caught.value.response.headers


def test_spend_limit_code_selects_sdk_subclass(
    api: FakeModelAPI, client: anthropic.Anthropic
) -> None:
    api.set_model(MODEL)
    api.inject(Fault(status=429, error_code="enforced_spend_limit_reached", retry_after=2.5))
    with pytest.raises(anthropic.EnforcedSpendLimitReachedError) as caught:
        client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    err = caught.value
    assert isinstance(err, anthropic.RateLimitError)
    assert err.error_code == "enforced_spend_limit_reached"
    assert err.details is not None
    assert err.details.error_code == "enforced_spend_limit_reached"
    assert err.response.headers["retry-after"] == "2.5"


def test_path_prefix_fault_hits_only_that_path(
    api: FakeModelAPI, client: anthropic.Anthropic
) -> None:
    api.set_model(MODEL)
    api.inject(Fault(status=500, path_prefix="/v1/messages/count_tokens"))
    assert client.messages.create(model=MODEL, max_tokens=64, messages=USER).content
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.count_tokens(model=MODEL, messages=USER)
    assert caught.value.type == "api_error"
    assert client.messages.count_tokens(model=MODEL, messages=USER).input_tokens == 10


def test_hang_fault_times_out_then_answers(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(MODEL)
    api.inject(Fault(status=0, delay_seconds=5.0))
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model=MODEL, max_tokens=64, messages=USER, timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert client.messages.create(model=MODEL, max_tokens=64, messages=USER).content

    api.inject(Fault(status=0, delay_seconds=0.2))
    started = time.monotonic()
    reply = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert time.monotonic() - started >= 0.2
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "done"


def test_error_rate_follows_the_seed(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    def run() -> list[int]:
        api.set_model(MODEL, ModelBehaviour(error_rate=0.5, error_status=503))
        statuses = []
        for _ in range(12):
            try:
                client.messages.create(model=MODEL, max_tokens=64, messages=USER)
                statuses.append(200)
            except anthropic.ServiceUnavailableError as err:
                statuses.append(err.status_code)
        return statuses

    rng = random.Random(0)  # the module's fake runs with FakeModelAPI(seed=0)
    expected = [503 if rng.random() < 0.5 else 200 for _ in range(12)]
    assert {200, 503} <= set(expected)
    assert run() == expected
    api.reset()
    api.accept_key(KEY)
    assert run() == expected


def test_latency_is_time_to_first_token(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(
        MODEL, ModelBehaviour(latency_seconds=0.15, stream_duration_seconds=0.3, text="a b c d")
    )
    started = time.monotonic()
    with client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream:
        arrivals = [time.monotonic() - started for _ in stream.text_stream]
    assert len(arrivals) == 4
    assert 0.15 <= arrivals[0] < 0.45  # the stream duration comes after the first token
    assert arrivals == sorted(arrivals)
    assert time.monotonic() - started >= 0.45

    started = time.monotonic()
    client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert time.monotonic() - started >= 0.45  # a whole reply waits for all of it


def test_request_shape_errors_and_unknown_paths(api: FakeModelAPI) -> None:
    api.set_model(MODEL)
    auth = {"x-api-key": KEY, "content-type": "application/json"}
    no_max_tokens = json.dumps({"model": MODEL, "messages": USER}).encode()
    status, headers, body = http("POST", api.url + "/v1/messages", no_max_tokens, auth)
    assert status == 400
    assert json.loads(body)["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    assert headers["request-id"].startswith("req_")

    status, _, body = http("POST", api.url + "/v1/messages", b"{not json", auth)
    assert (status, json.loads(body)["error"]["type"]) == (400, "invalid_request_error")

    bedrock_body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "model": MODEL,
            "max_tokens": 8,
            "messages": USER,
        }
    ).encode()
    bearer = {"Authorization": f"Bearer {KEY}"}
    status, _, body = http("POST", f"{api.url}/model/{MODEL}/invoke", bedrock_body, bearer)
    assert (status, json.loads(body)["error"]["message"]) == (
        400,
        "extraneous key [model] is not permitted",
    )

    status, _, body = http("GET", api.url + "/v1/nothing-here", headers=auth)
    assert (status, json.loads(body)["error"]["type"]) == (404, "not_found_error")
    assert [(r.endpoint, r.status) for r in api.requests()] == [
        ("messages", 400),
        ("messages", 400),
        ("messages", 400),
        ("unknown", 404),
    ]


# -- Bedrock -------------------------------------------------------------------------------


def test_bedrock_message(api: FakeModelAPI) -> None:
    # Configured under the first-party id; Bedrock's spelling of it finds the same model.
    api.set_model(OTHER, ModelBehaviour(text="from bedrock", output_tokens=4))
    with bedrock(api) as sdk:
        reply = sdk.messages.create(model=BEDROCK_MODEL, max_tokens=64, messages=USER)
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "from bedrock"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (10, 4)
    assert outcomes(api.requests()) == [
        (
            "POST",
            f"/model/{BEDROCK_MODEL}/invoke",
            "bedrock",
            "messages",
            BEDROCK_MODEL,
            KEY,
            False,
            200,
        )
    ]


def test_bedrock_stream_frames(api: FakeModelAPI) -> None:
    api.set_model(OTHER, ModelBehaviour(text="one two", output_tokens=5))
    body = json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": USER}
    ).encode()
    status, headers, raw = http(
        "POST",
        f"{api.url}/model/{BEDROCK_MODEL}/invoke-with-response-stream",
        body,
        {"Authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.amazon.eventstream"
    frames = decode_event_stream(raw)
    assert {tuple(sorted(h.items())) for h, _ in frames} == {
        (
            (":content-type", "application/json"),
            (":event-type", "chunk"),
            (":message-type", "event"),
        )
    }
    events = [json.loads(base64.b64decode(json.loads(p)["bytes"])) for _, p in frames]
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == (
        "one two"
    )
    assert events[-2]["usage"]["output_tokens"] == 5
    assert events[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 5


def test_bedrock_stream_through_sdk(api: FakeModelAPI) -> None:
    # The SDK decodes Bedrock streams with botocore, which the project does not install.
    pytest.importorskip("botocore")
    api.set_model(OTHER, ModelBehaviour(text="streamed from bedrock", output_tokens=6))
    with (
        bedrock(api) as sdk,
        sdk.messages.stream(model=BEDROCK_MODEL, max_tokens=64, messages=USER) as stream,
    ):
        final = stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "streamed from bedrock"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (10, 6)
    [record] = api.requests()
    assert (record.path, record.stream) == (
        f"/model/{BEDROCK_MODEL}/invoke-with-response-stream",
        True,
    )


def test_bedrock_bad_key(api: FakeModelAPI) -> None:
    api.set_model(OTHER)
    with bedrock(api, key="bedrock-wrong") as sdk, pytest.raises(anthropic.AuthenticationError):
        sdk.messages.create(model=BEDROCK_MODEL, max_tokens=64, messages=USER)
    assert [(r.provider, r.credential, r.status) for r in api.requests()] == [
        ("bedrock", "bedrock-wrong", 401)
    ]


# -- Vertex --------------------------------------------------------------------------------


def test_vertex_message_stream_and_count_tokens(api: FakeModelAPI) -> None:
    api.set_model(OTHER, ModelBehaviour(text="from vertex", output_tokens=8, tool_turns=1))
    with vertex(api) as sdk:
        reply = sdk.messages.create(model=VERTEX_MODEL, max_tokens=64, messages=USER)
        with sdk.messages.stream(model=VERTEX_MODEL, max_tokens=64, messages=USER) as stream:
            final = stream.get_final_message()
        tool = sdk.messages.create(
            model=VERTEX_MODEL, max_tokens=64, messages=USER, tools=[READ_FILE]
        )
        counted = sdk.messages.count_tokens(model=VERTEX_MODEL, messages=USER)

    assert reply.content[0].type == "text"
    assert reply.content[0].text == "from vertex"
    assert final.content[0].type == "text"
    assert final.content[0].text == "from vertex"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (10, 8)
    assert tool.stop_reason == "tool_use"
    assert counted.input_tokens == 10
    base = "/v1/projects/proj/locations/us-east5/publishers/anthropic/models"
    assert [(r.path, r.endpoint, r.model, r.stream) for r in api.requests()] == [
        (f"{base}/{VERTEX_MODEL}:rawPredict", "messages", VERTEX_MODEL, False),
        (f"{base}/{VERTEX_MODEL}:streamRawPredict", "messages", VERTEX_MODEL, True),
        (f"{base}/{VERTEX_MODEL}:rawPredict", "messages", VERTEX_MODEL, False),
        (f"{base}/count-tokens:rawPredict", "count_tokens", VERTEX_MODEL, False),
    ]
    assert {(r.method, r.provider, r.credential, r.status) for r in api.requests()} == {
        ("POST", "vertex", KEY, 200)
    }


@pytest.fixture(scope="module")
def service_account_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_credentials(
    api: FakeModelAPI, pem: str, email: str
) -> service_account.Credentials:
    info = {
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": api.url + "/token",
    }
    return service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )


def test_vertex_service_account_token_flow(api: FakeModelAPI, service_account_key: str) -> None:
    api.set_model(OTHER, ModelBehaviour(text="via service account"))
    api.accept_service_account(SERVICE_ACCOUNT)
    credentials = service_account_credentials(api, service_account_key, SERVICE_ACCOUNT)
    with vertex(api, credentials=credentials) as sdk:
        reply = sdk.messages.create(model=VERTEX_MODEL, max_tokens=64, messages=USER)
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "via service account"

    token, call = api.requests()
    assert (token.method, token.path, token.provider, token.endpoint, token.status) == (
        "POST",
        "/token",
        "vertex",
        "token",
        200,
    )
    assert token.credential == SERVICE_ACCOUNT
    assert call.credential is not None
    assert call.credential.startswith("ya29.fake-")
    assert call.credential == credentials.token
    assert call.status == 200


def test_vertex_unknown_service_account_is_refused(
    api: FakeModelAPI, service_account_key: str
) -> None:
    api.set_model(OTHER)
    credentials = service_account_credentials(api, service_account_key, "stranger@x.iam")
    with vertex(api, credentials=credentials) as sdk, pytest.raises(RefreshError) as caught:
        sdk.messages.create(model=VERTEX_MODEL, max_tokens=64, messages=USER)
    assert "invalid_grant" in str(caught.value)
    assert [(r.endpoint, r.credential, r.status) for r in api.requests()] == [
        ("token", "stranger@x.iam", 400)
    ]


def test_token_endpoint_rejects_malformed_assertions(api: FakeModelAPI) -> None:
    api.accept_service_account(SERVICE_ACCOUNT)

    def grant(assertion: str, grant_type: str = "urn:ietf:params:oauth:grant-type:jwt-bearer"):
        form = urllib.parse.urlencode({"grant_type": grant_type, "assertion": assertion})
        headers = {"content-type": "application/x-www-form-urlencoded"}
        status, _, body = http("POST", api.url + "/token", form.encode(), headers)
        return status, json.loads(body)

    assert grant("not-a-jwt") == (
        400,
        {"error": "invalid_grant", "error_description": "Invalid JWT."},
    )
    assert grant(unsigned_jwt({"iss": SERVICE_ACCOUNT}), "password")[1]["error"] == (
        "unsupported_grant_type"
    )
    expired = unsigned_jwt({"iss": SERVICE_ACCOUNT, "exp": time.time() - 60})
    assert grant(expired)[1]["error"] == "invalid_grant"
    status, minted = grant(unsigned_jwt({"iss": SERVICE_ACCOUNT, "exp": time.time() + 600}))
    assert status == 200
    assert (minted["expires_in"], minted["token_type"]) == (3600, "Bearer")
    assert minted["access_token"].startswith("ya29.fake-")


# -- Foundry -------------------------------------------------------------------------------


def test_foundry_message_and_stream(api: FakeModelAPI) -> None:
    api.set_model(MODEL, ModelBehaviour(text="from foundry", output_tokens=3))
    with foundry(api) as sdk:
        reply = sdk.messages.create(model=MODEL, max_tokens=64, messages=USER)
        with sdk.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream:
            text = stream.get_final_text()
            final = stream.get_final_message()
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "from foundry"
    assert text == "from foundry"
    assert final.usage.output_tokens == 3
    assert outcomes(api.requests()) == [
        ("POST", "/anthropic/v1/messages", "foundry", "messages", MODEL, KEY, False, 200),
        ("POST", "/anthropic/v1/messages", "foundry", "messages", MODEL, KEY, True, 200),
    ]


def test_foundry_accepts_the_api_key_header(api: FakeModelAPI) -> None:
    api.set_model(MODEL)
    body = json.dumps({"model": MODEL, "max_tokens": 8, "messages": USER}).encode()
    status, _, raw = http("POST", api.url + "/anthropic/v1/messages", body, {"api-key": KEY})
    assert (status, json.loads(raw)["content"]) == (200, [{"type": "text", "text": "done"}])


# -- control API ---------------------------------------------------------------------------


def control_scenario(control: FakeModelAPI | FakeModelAPIClient, url: str) -> list[Any]:
    """Configure through `control`, call through the SDK, and report what was recorded."""
    control.reset()
    control.accept_key(KEY)
    control.accept_key("sk-revoked")
    control.revoke_key("sk-revoked")
    control.set_model(MODEL, ModelBehaviour(text="configured", output_tokens=3))
    control.set_model(OTHER)
    control.remove_model(OTHER)
    control.set_model("claude-opus-4-6")
    control.deny(key=KEY, model="claude-opus-4-6")
    control.inject(Fault(status=400))
    control.clear_faults()
    control.inject(Fault(status=503, model=MODEL, retry_after=3))
    control.accept_service_account(SERVICE_ACCOUNT)

    results: list[Any] = []
    with anthropic.Anthropic(api_key=KEY, base_url=url, max_retries=0) as sdk:
        for model in (MODEL, MODEL, OTHER, "claude-opus-4-6"):
            try:
                reply = sdk.messages.create(model=model, max_tokens=64, messages=USER)
                results.append(reply.content[0].text)
            except anthropic.APIStatusError as err:
                results.append(type(err).__name__)
    with (
        anthropic.Anthropic(api_key="sk-revoked", base_url=url, max_retries=0) as sdk,
        pytest.raises(anthropic.AuthenticationError),
    ):
        sdk.messages.create(model=MODEL, max_tokens=64, messages=USER)
    form = urllib.parse.urlencode(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": unsigned_jwt({"iss": SERVICE_ACCOUNT}),
        }
    ).encode()
    results.append(http("POST", url + "/token", form)[0])

    records = control.requests()
    assert all(isinstance(r, RecordedRequest) for r in records)
    results.append([(r.model, r.credential, r.status) for r in records])
    control.clear_requests()
    results.append(control.requests())
    return results


def test_control_client_is_equivalent_to_the_object(api: FakeModelAPI) -> None:
    expected = [
        "ServiceUnavailableError",
        "configured",
        "NotFoundError",
        "PermissionDeniedError",
        200,
        [
            (MODEL, KEY, 503),
            (MODEL, KEY, 200),
            (OTHER, KEY, 404),
            ("claude-opus-4-6", KEY, 403),
            (MODEL, "sk-revoked", 401),
            (None, SERVICE_ACCOUNT, 200),
        ],
        [],
    ]
    assert control_scenario(api, api.url) == expected
    assert control_scenario(FakeModelAPIClient(api.url), api.url) == expected


def test_control_client_reads_records_with_all_fields(api: FakeModelAPI) -> None:
    api.set_model(MODEL)
    with anthropic.Anthropic(api_key=KEY, base_url=api.url, max_retries=0) as sdk:
        sdk.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert FakeModelAPIClient(api.url).requests() == api.requests()


def test_control_api_rejects_bad_input(api: FakeModelAPI) -> None:
    def post(path: str, body: object) -> tuple[int, str]:
        status, _, raw = http("POST", f"{api.url}/_control/{path}", json.dumps(body).encode())
        return status, json.loads(raw)["error"]

    assert post("models/m", {"latency": 1}) == (400, "unknown ModelBehaviour field(s): latency")
    status, error = post("models/m", {"latency_seconds": "slow"})
    assert (status, error.startswith("ModelBehaviour.latency_seconds: 'slow'")) == (400, True)
    assert post("faults", {"status": 429, "count": 0}) == (400, "Fault.count must be at least 1")
    with pytest.raises(ValueError, match=r"Fault\.count must be at least 1"):
        FakeModelAPIClient(api.url).inject(Fault(status=429, count=0))
    assert api.requests() == []  # control calls are never recorded


def test_reset_forgets_everything(api: FakeModelAPI, client: anthropic.Anthropic) -> None:
    api.set_model(MODEL)
    api.inject(Fault(status=429))
    api.deny(KEY, OTHER)
    with pytest.raises(anthropic.RateLimitError):
        client.models.list()  # a fault without a model matches any request
    api.inject(Fault(status=429))
    api.reset()
    assert api.requests() == []
    with pytest.raises(anthropic.AuthenticationError):
        client.models.list()
    api.accept_key(KEY)
    assert list(client.models.list()) == []
    api.set_model(MODEL)
    assert client.messages.create(model=MODEL, max_tokens=64, messages=USER).content


@pytest.mark.timeout(30)
def test_standalone_process(tmp_path: Path) -> None:
    state_file = tmp_path / "fakeapi.json"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "cluster" / "fakeapi.py"),
            "--port",
            "0",
            "--state-file",
            str(state_file),
            "--accept-key",
            KEY,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert json.loads(state_file.read_text()) == {"url": url, "pid": process.pid}
        remote = FakeModelAPIClient(url)
        remote.set_model(MODEL, ModelBehaviour(text="from another process"))
        with anthropic.Anthropic(api_key=KEY, base_url=url, max_retries=0) as sdk:
            reply = sdk.messages.create(model=MODEL, max_tokens=64, messages=USER)
        assert reply.content[0].type == "text"
        assert reply.content[0].text == "from another process"
        assert [(r.endpoint, r.status) for r in remote.requests()] == [("messages", 200)]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    assert not state_file.exists()


def test_only_loopback_and_canonical_ids() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeModelAPI(host="0.0.0.0")
    assert canonical_model_id(BEDROCK_MODEL) == OTHER
    assert canonical_model_id(f"anthropic.{OTHER}-v1:0") == OTHER
    assert canonical_model_id(VERTEX_MODEL) == OTHER
    assert canonical_model_id(MODEL) == MODEL

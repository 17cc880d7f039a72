#!/usr/bin/env python3
"""A loopback stand-in for the Anthropic model API, for tests and the demo.

The real model API cannot be reached from the test bed, so this is the one thing the
project fakes: everything else (the control plane, Prometheus, the anthropic SDK itself)
is real. The fake speaks the request and response shapes, the SSE event sequence and the
error envelopes that the installed `anthropic` SDK parses, so code under test talks to it
through the SDK's own clients, unchanged but for `base_url`.

Provider styles served (one aiohttp app, routed by path):

- first party / gateway (`Anthropic(base_url=url)`): `POST /v1/messages` (JSON or SSE),
  `POST /v1/messages/count_tokens`, `GET /v1/models`, `GET /v1/models/{id}`;
  auth `x-api-key` or `Authorization: Bearer`.
- Bedrock (`AnthropicBedrock(api_key=..., base_url=url)`): `POST /model/{id}/invoke` and
  `POST /model/{id}/invoke-with-response-stream` (AWS event-stream binary frames);
  auth `Authorization: Bearer` (SigV4 is not implemented, so it gets 401).
- Vertex (`AnthropicVertex(access_token=..., base_url=url + "/v1")`):
  `POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{id}:rawPredict`,
  `...:streamRawPredict` (SSE) and `.../models/count-tokens:rawPredict`; auth
  `Authorization: Bearer`. `POST /token` is a Google OAuth2 token endpoint for the
  service-account JWT-bearer grant, minting access tokens the fake then accepts.
- Foundry (`AnthropicFoundry(api_key=..., base_url=url + "/anthropic/")`): the first-party
  paths under `/anthropic`; auth `x-api-key` or `api-key` (or a bearer Entra token).

Behaviour is programmable per model (`ModelBehaviour`), faults can be injected
(`Fault`), and every API request is recorded (`RecordedRequest`), rejected ones too.
`/_control/*` exposes the same knobs over HTTP so a fake in another process can be driven
by `FakeModelAPIClient`. Checks run in the order: credential (401), request shape (400),
model (404), per-key model denial (403), injected faults, then the model's behaviour.

Run standalone: `python cluster/fakeapi.py --port 8765 [--state-file F]` prints its URL.
It binds 127.0.0.1 only. stdlib + aiohttp only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import math
import os
import random
import re
import signal
import struct
import sys
import threading
import time
import typing
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

__all__ = [
    "FakeModelAPI",
    "FakeModelAPIClient",
    "Fault",
    "ModelBehaviour",
    "RecordedRequest",
    "canonical_model_id",
]

Provider = Literal["anthropic", "bedrock", "vertex", "foundry"]
# "unknown" marks a request to a path the fake does not serve; it is recorded so that a
# misrouted client shows up in `requests()` instead of vanishing.
Endpoint = Literal["messages", "count_tokens", "models.retrieve", "models.list", "token", "unknown"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MODEL_CREATED_AT = "2025-01-01T00:00:00Z"

# The `error.type` the real API pairs with each status; the SDK picks its exception class
# from the status (and `error.details.error_code`), and exposes this as `err.type`.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ERROR_MESSAGES: dict[int, str] = {
    400: "Invalid request.",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found.",
    408: "Request timed out.",
    409: "Conflict.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of requests has exceeded your rate limit. Please try again later.",
    500: "Internal server error",
    503: "Service unavailable.",
    504: "Gateway timeout.",
    529: "Overloaded",
}


@dataclass(frozen=True)
class ModelBehaviour:
    """How one model answers. Durations are seconds; token counts go into `usage`.

    A non-streamed reply arrives after `latency_seconds + stream_duration_seconds`, the time
    the whole generation would take; a stream sends its first delta after `latency_seconds`.
    """

    latency_seconds: float = 0.0  # before the response; for streams, time to first token
    stream_duration_seconds: float = 0.0  # spread over the deltas after the first token
    input_tokens: int | None = None  # None: estimate from the request, ~4 chars a token
    output_tokens: int = 50
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    tool_turns: int = 0  # answer tool_use until this many tool_results are in the conversation
    text: str = "done"
    error_rate: float = 0.0
    error_status: int = 500


@dataclass(frozen=True)
class Fault:
    """The next `count` requests matching `model` (any provider spelling) and `path_prefix`
    (raw path) wait `delay_seconds`, then fail with `status`; status 0 answers normally.

    Faults apply after the credential, shape, model and denial checks, in injection order,
    and never to the OAuth2 `/token` endpoint.
    """

    status: int
    count: int = 1
    model: str | None = None
    path_prefix: str | None = None
    retry_after: float | None = None
    error_code: str | None = None
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    time: float
    method: str
    path: str
    provider: Provider
    endpoint: Endpoint
    model: str | None
    credential: str | None
    stream: bool
    status: int


def canonical_model_id(model: str) -> str:
    """The first-party id behind a provider's spelling of it.

    `us.anthropic.claude-sonnet-4-5-20250929-v1:0` (Bedrock) and
    `claude-sonnet-4-5@20250929` (Vertex) both become `claude-sonnet-4-5-20250929`, so one
    `set_model` covers every provider style.
    """
    name = re.sub(r"^(?:[a-z]{2,6}\.)?anthropic\.", "", model.strip())
    name = re.sub(r"-v\d+(?::\d+)?$", "", name)
    return name.replace("@", "-")


def display_name(model: str) -> str:
    """`claude-sonnet-4-5-20250929` -> `Claude Sonnet 4.5`, the way the Models API names them."""
    parts = canonical_model_id(model).split("-")
    if parts and re.fullmatch(r"\d{8}", parts[-1]):
        parts = parts[:-1]
    words = [p.capitalize() for p in parts if not p.isdigit()]
    version = ".".join(p for p in parts if p.isdigit())
    return " ".join([*words, version] if version else words)


def _from_dict(cls: type[Any], data: Any) -> Any:
    """Build a dataclass from control-API JSON, refusing unknown fields and wrong types."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    for name, value in data.items():
        allowed = typing.get_args(hints[name]) or (hints[name],)
        if float in allowed:
            allowed = (*allowed, int)  # JSON has one number type
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            raise ValueError(f"{cls.__name__}.{name}: {value!r} is not {hints[name]}")
    return cls(**data)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


# ---------------------------------------------------------------------------------------
# Request content helpers


def _text_of(value: Any) -> str:
    """The text a request carries, for the ~4-chars-a-token input estimate."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text_of(item) for item in value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "text":
            return str(value.get("text", ""))
        if kind == "tool_use":
            return json.dumps(value.get("input", {}))
        if "content" in value:
            return _text_of(value["content"])
    return ""


def estimate_input_tokens(body: Mapping[str, Any]) -> int:
    chars = len(_text_of(body.get("system", "")))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            chars += len(_text_of(message.get("content", "")))
    if body.get("tools"):
        chars += len(json.dumps(body["tools"]))
    return max(1, math.ceil(chars / 4))


def count_tool_results(body: Mapping[str, Any]) -> int:
    count = 0
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            count += sum(
                1 for b in content if isinstance(b, dict) and b.get("type") == "tool_result"
            )
    return count


def _placeholder_input(tool: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the tool's required properties with typed placeholders, so schema checks pass."""
    schema = tool.get("input_schema") or {}
    properties = schema.get("properties") or {}
    placeholders: dict[str, Any] = {
        "string": "fake",
        "integer": 1,
        "number": 1,
        "boolean": False,
        "array": [],
        "object": {},
    }
    out: dict[str, Any] = {}
    for name in schema.get("required") or []:
        kind = (properties.get(name) or {}).get("type", "string")
        out[name] = placeholders.get(kind, "fake") if isinstance(kind, str) else "fake"
    return out


def _text_chunks(text: str) -> list[str]:
    """Word-sized deltas, as a real stream sends several small text_delta events."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


# ---------------------------------------------------------------------------------------
# Wire encodings


def sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _aws_string_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # header value type 7 = string, with a 2-byte length
    return (
        struct.pack("!B", len(raw_name))
        + raw_name
        + struct.pack("!BH", 7, len(raw_value))
        + raw_value
    )


def aws_event_frame(data: Mapping[str, Any]) -> bytes:
    """One AWS event-stream message carrying a Messages event, as Bedrock streams it.

    Layout: prelude (total length, headers length: big-endian u32 each), CRC32 of the
    prelude, headers, payload, CRC32 of everything before it. The payload is the JSON
    `{"bytes": base64(<the SSE event's JSON>)}` that botocore's parser unwraps.
    """
    event_json = json.dumps(data, separators=(",", ":")).encode()
    payload = json.dumps({"bytes": base64.b64encode(event_json).decode()}).encode()
    headers = (
        _aws_string_header(":event-type", "chunk")
        + _aws_string_header(":content-type", "application/json")
        + _aws_string_header(":message-type", "event")
    )
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack("!I", zlib.crc32(message))


def error_body(
    status: int, message: str | None = None, error_code: str | None = None
) -> dict[str, Any]:
    error_type = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    error: dict[str, Any] = {
        "type": error_type,
        "message": message or ERROR_MESSAGES.get(status, "Error."),
    }
    if error_code is not None:
        # The SDK reads `error.details.error_code` (see `extract_error_code`) and picks the
        # subclass registered for (status, code), e.g. EnforcedSpendLimitReachedError.
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": _new_id("req")}


# ---------------------------------------------------------------------------------------
# Shared state


@dataclass
class _ActiveFault:
    fault: Fault
    remaining: int


@dataclass
class _State:
    seed: int
    keys: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)  # minted by POST /token
    service_accounts: set[str] = field(default_factory=set)
    denied: set[tuple[str, str]] = field(default_factory=set)  # (key, canonical model)
    models: dict[str, ModelBehaviour] = field(default_factory=dict)
    faults: list[_ActiveFault] = field(default_factory=list)
    records: list[RecordedRequest] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


@dataclass
class _Call:
    """What the router learned about one API request."""

    started: float
    method: str
    path: str
    provider: Provider
    endpoint: Endpoint
    credential: str | None = None
    model: str | None = None
    stream: bool = False
    body: dict[str, Any] = field(default_factory=dict)


class _RejectError(Exception):
    """An error answer decided before any response bytes are sent."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        error_code: str | None = None,
        retry_after: float | None = None,
        recorded: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.retry_after = retry_after
        self.recorded = recorded  # True when the request's record is already written


# ---------------------------------------------------------------------------------------
# The server


class FakeModelAPI:
    """The fake, served by aiohttp on its own thread and event loop.

    Synchronous code configures it directly (`accept_key`, `set_model`, `inject`, ...) and
    reads what it saw with `requests()`. Configuration is guarded by a lock, as the test
    thread and the server thread share it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int = 0) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the fake model API only binds loopback, not {host!r}")
        self.host = host
        self._requested_port = port
        self._seed = seed
        self._lock = threading.Lock()
        self._state = _State(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeModelAPI is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("FakeModelAPI already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # surfaced to start()'s caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="fake-model-api", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self._add_control_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation: a client that gives up (timeout test) cancels its hang;
        # a short shutdown_timeout keeps stop() quick even with a stream in flight.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = self._runner = None
        self.port = 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------------

    def accept_key(self, key: str) -> None:
        """Accept `key` as an API key or bearer token (x-api-key, api-key or Bearer)."""
        with self._lock:
            self._state.keys.add(key)

    def revoke_key(self, key: str) -> None:
        with self._lock:
            self._state.keys.discard(key)
            self._state.tokens.discard(key)

    def accept_service_account(self, email: str) -> None:
        """Let POST /token mint access tokens for JWTs issued by this service account."""
        with self._lock:
            self._state.service_accounts.add(email)

    def deny(self, key: str, model: str) -> None:
        """`key` gets 403 permission_error on `model` (any provider spelling of it)."""
        with self._lock:
            self._state.denied.add((key, canonical_model_id(model)))

    def set_model(self, name: str, behaviour: ModelBehaviour | None = None) -> None:
        with self._lock:
            self._state.models[name] = behaviour or ModelBehaviour()

    def remove_model(self, name: str) -> None:
        with self._lock:
            self._state.models.pop(name, None)

    def inject(self, fault: Fault) -> None:
        if fault.count < 1:
            raise ValueError("Fault.count must be at least 1")
        with self._lock:
            self._state.faults.append(_ActiveFault(fault, fault.count))

    def clear_faults(self) -> None:
        with self._lock:
            self._state.faults.clear()

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.records)

    def clear_requests(self) -> None:
        with self._lock:
            self._state.records.clear()

    def reset(self) -> None:
        """No keys, models, faults or records; the random source is re-seeded."""
        with self._lock:
            self._state = _State(self._seed)

    # -- lookups (call with the lock held) -------------------------------------------------

    def _find_model(self, model: str) -> tuple[str, ModelBehaviour] | None:
        models = self._state.models
        if model in models:
            return model, models[model]
        wanted = canonical_model_id(model)
        for name, behaviour in models.items():
            if canonical_model_id(name) == wanted:
                return name, behaviour
        return None

    def _take_fault(self, call: _Call) -> Fault | None:
        for active in self._state.faults:
            fault = active.fault
            if fault.model is not None and (
                call.model is None
                or canonical_model_id(fault.model) != canonical_model_id(call.model)
            ):
                continue
            if fault.path_prefix is not None and not call.path.startswith(fault.path_prefix):
                continue
            active.remaining -= 1
            if active.remaining <= 0:
                self._state.faults.remove(active)
            return fault
        return None

    def _record(self, call: _Call, status: int) -> None:
        record = RecordedRequest(
            time=call.started,
            method=call.method,
            path=call.path,
            provider=call.provider,
            endpoint=call.endpoint,
            model=call.model,
            credential=call.credential,
            stream=call.stream,
            status=status,
        )
        with self._lock:
            self._state.records.append(record)

    # -- routing -------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        call = self._route(request.method, path)
        if call.endpoint == "token":
            return await self._token(request, call)
        try:
            return await self._serve(request, call)
        except _RejectError as reject:
            if not reject.recorded:
                self._record(call, reject.status)
            return self._error_response(
                reject.status,
                reject.message,
                error_code=reject.error_code,
                retry_after=reject.retry_after,
            )

    def _route(self, method: str, path: str) -> _Call:
        """Work out provider, endpoint and (URL-borne) model from the raw request path."""
        started = time.time()
        segments = path.split("/")
        if path == "/token" and method == "POST":
            return _Call(started, method, path, "vertex", "token")
        if len(segments) == 4 and segments[1] == "model" and method == "POST":
            model = urllib.parse.unquote(segments[2])
            if segments[3] == "invoke":
                return _Call(started, method, path, "bedrock", "messages", model=model)
            if segments[3] == "invoke-with-response-stream":
                return _Call(started, method, path, "bedrock", "messages", model=model, stream=True)
        vertex = re.fullmatch(
            r"(?:/v1(?:beta1)?)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/([^/]+)",
            path,
        )
        if vertex and method == "POST":
            model_segment, _, specifier = vertex.group(1).rpartition(":")
            model = urllib.parse.unquote(model_segment)
            if model == "count-tokens" and specifier == "rawPredict":
                return _Call(started, method, path, "vertex", "count_tokens")
            if specifier in ("rawPredict", "streamRawPredict"):
                stream = specifier == "streamRawPredict"
                return _Call(
                    started, method, path, "vertex", "messages", model=model, stream=stream
                )
        provider: Provider = "anthropic"
        rest = path
        if path == "/anthropic" or path.startswith("/anthropic/"):
            provider, rest = "foundry", path[len("/anthropic") :]
        if rest == "/v1/messages" and method == "POST":
            return _Call(started, method, path, provider, "messages")
        if rest == "/v1/messages/count_tokens" and method == "POST":
            return _Call(started, method, path, provider, "count_tokens")
        if rest == "/v1/models" and method == "GET":
            return _Call(started, method, path, provider, "models.list")
        models = re.fullmatch(r"/v1/models/([^/]+)", rest)
        if models and method == "GET":
            model = urllib.parse.unquote(models.group(1))
            return _Call(started, method, path, provider, "models.retrieve", model=model)
        if path.startswith("/model/"):
            provider = "bedrock"
        elif "/publishers/anthropic/" in path:
            provider = "vertex"
        return _Call(started, method, path, provider, "unknown")

    def _credential(self, request: web.Request, provider: Provider) -> str | None:
        headers = request.headers
        bearer = headers.get("Authorization", "")
        token = bearer[7:].strip() if bearer[:7].lower() == "bearer " else None
        if provider == "anthropic":
            return headers.get("x-api-key") or token
        if provider == "foundry":
            return headers.get("x-api-key") or headers.get("api-key") or token
        return token  # Bedrock API keys and Vertex access tokens are both bearer tokens

    # -- the API -------------------------------------------------------------------------

    async def _serve(self, request: web.Request, call: _Call) -> web.StreamResponse:
        call.credential = self._credential(request, call.provider)
        if call.endpoint == "unknown":
            raise _RejectError(404, f"Not found: {request.method} {call.path}")
        body_error: _RejectError | None = None
        if request.method == "POST":
            try:
                call.body = await self._json_body(request)
            except _RejectError as exc:
                body_error = exc
            if call.model is None and isinstance(call.body.get("model"), str):
                call.model = call.body["model"]  # so even a 401 records which model was asked for
        with self._lock:
            authorised = call.credential is not None and (
                call.credential in self._state.keys or call.credential in self._state.tokens
            )
        if not authorised:
            raise _RejectError(401, self._auth_message(call))
        if body_error is not None:
            raise body_error
        if request.method == "POST":
            self._validate(call)
        if call.endpoint == "models.list":
            page = self._models_page(request)
            await self._faults(call)
            self._record(call, 200)
            return self._json_response(page)

        assert call.model is not None
        with self._lock:
            found = self._find_model(call.model)
            denied = (call.credential or "", canonical_model_id(call.model)) in self._state.denied
        if found is None:
            raise _RejectError(404, f"model: {call.model}")
        if denied:
            raise _RejectError(403)
        name, behaviour = found

        await self._faults(call)
        if call.endpoint == "models.retrieve":
            self._record(call, 200)
            return self._json_response(self._model_object(name))
        if call.endpoint == "count_tokens":
            self._record(call, 200)
            usage = self._usage(call, behaviour, 0)
            return self._json_response({"input_tokens": usage["input_tokens"]})

        if behaviour.error_rate > 0:
            with self._lock:
                failed = self._state.rng.random() < behaviour.error_rate
            if failed:
                raise _RejectError(behaviour.error_status)
        self._record(call, 200)
        if call.stream:
            return await self._stream(request, call, behaviour)
        await asyncio.sleep(behaviour.latency_seconds + behaviour.stream_duration_seconds)
        content, stop_reason = self._content(call, behaviour)
        message = self._message(call, behaviour, content, stop_reason, behaviour.output_tokens)
        response = self._json_response(message)
        if call.provider == "bedrock":
            response.headers["x-amzn-bedrock-input-token-count"] = str(
                message["usage"]["input_tokens"]
            )
            response.headers["x-amzn-bedrock-output-token-count"] = str(
                message["usage"]["output_tokens"]
            )
        return response

    async def _faults(self, call: _Call) -> None:
        """Apply the first matching injected fault, if any: delay, then fail or go on."""
        with self._lock:
            fault = self._take_fault(call)
        if fault is None:
            return
        if fault.status == 0:
            await asyncio.sleep(fault.delay_seconds)  # a slow answer, then a normal one
            return
        # Recorded before the delay, so records keep the order in which requests arrived.
        self._record(call, fault.status)
        await asyncio.sleep(fault.delay_seconds)
        raise _RejectError(
            fault.status,
            error_code=fault.error_code,
            retry_after=fault.retry_after,
            recorded=True,
        )

    @staticmethod
    def _auth_message(call: _Call) -> str:
        if call.credential is None:
            if call.provider in ("anthropic", "foundry"):
                return "x-api-key header is required"
            return "Authorization header with a bearer token is required"
        if call.provider in ("anthropic", "foundry"):
            return "invalid x-api-key"
        return "invalid bearer token"

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise _RejectError(400, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _RejectError(400, "request body must be a JSON object")
        return body

    @staticmethod
    def _validate(call: _Call) -> None:
        body = call.body
        if call.provider in ("bedrock", "vertex") and "anthropic_version" not in body:
            raise _RejectError(400, "anthropic_version: Field required")
        if call.provider == "bedrock":
            # Bedrock takes model and streaming from the URL and rejects them in the body.
            for key in ("model", "stream"):
                if key in body:
                    raise _RejectError(400, f"extraneous key [{key}] is not permitted")
        if not call.model:
            raise _RejectError(400, "model: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _RejectError(400, "messages: Field required")
        if call.endpoint == "messages":
            max_tokens = body.get("max_tokens")
            if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
                raise _RejectError(400, "max_tokens: Field required")
            if call.provider in ("anthropic", "foundry"):
                call.stream = bool(body.get("stream", False))
            elif call.provider == "vertex":
                call.stream = call.stream or bool(body.get("stream", False))

    def _models_page(self, request: web.Request) -> dict[str, Any]:
        query = request.rel_url.query
        with self._lock:
            ids = list(self._state.models)
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            raise _RejectError(400, "limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise _RejectError(400, "limit: Input should be between 1 and 1000")
        after, before = query.get("after_id"), query.get("before_id")
        for cursor in (after, before):
            if cursor is not None and cursor not in ids:
                raise _RejectError(400, f"Invalid cursor: {cursor}")
        if after is not None:
            start = ids.index(after) + 1
            page, has_more = ids[start : start + limit], start + limit < len(ids)
        elif before is not None:
            end = ids.index(before)
            page, has_more = ids[max(0, end - limit) : end], end - limit > 0
        else:
            page, has_more = ids[:limit], limit < len(ids)
        return {
            "data": [self._model_object(name) for name in page],
            "has_more": has_more,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    @staticmethod
    def _model_object(name: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": name,
            "display_name": display_name(name),
            "created_at": MODEL_CREATED_AT,
            "lifecycle": "active",  # required by this SDK's ModelInfo
            "deprecated_at": None,
            "retires_at": None,
        }

    # -- replies -------------------------------------------------------------------------

    @staticmethod
    def _content(call: _Call, behaviour: ModelBehaviour) -> tuple[list[dict[str, Any]], str]:
        tools = [t for t in call.body.get("tools") or [] if isinstance(t, dict) and t.get("name")]
        if tools and count_tool_results(call.body) < behaviour.tool_turns:
            block = {
                "type": "tool_use",
                "id": _new_id("toolu"),
                "name": tools[0]["name"],
                "input": _placeholder_input(tools[0]),
            }
            return [block], "tool_use"
        return [{"type": "text", "text": behaviour.text}], "end_turn"

    @staticmethod
    def _usage(call: _Call, behaviour: ModelBehaviour, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": behaviour.input_tokens
            if behaviour.input_tokens is not None
            else estimate_input_tokens(call.body),
            "cache_creation_input_tokens": behaviour.cache_creation_input_tokens,
            "cache_read_input_tokens": behaviour.cache_read_input_tokens,
            "output_tokens": output_tokens,
        }

    def _message(
        self,
        call: _Call,
        behaviour: ModelBehaviour,
        content: list[dict[str, Any]],
        stop_reason: str | None,
        output_tokens: int,
    ) -> dict[str, Any]:
        return {
            "id": _new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": self._usage(call, behaviour, output_tokens),
        }

    async def _events(
        self, call: _Call, behaviour: ModelBehaviour
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The Messages stream, paced: latency before the first delta, then the stream
        duration split evenly over the gaps after it (the last one before message_delta)."""
        content, stop_reason = self._content(call, behaviour)
        # message_start carries no content yet and output_tokens 1, as the real API's does.
        start = self._message(call, behaviour, [], None, 1)
        yield "message_start", {"type": "message_start", "message": start}
        deltas: list[tuple[int, dict[str, Any]]] = []
        for index, block in enumerate(content):
            if block["type"] == "text":
                deltas += [
                    (index, {"type": "text_delta", "text": t}) for t in _text_chunks(block["text"])
                ]
            else:
                raw = json.dumps(block["input"])
                cut = max(1, len(raw) // 2)  # two partial_json pieces, as the API splits JSON
                parts = [raw[:cut], raw[cut:]] if len(raw) > 1 else [raw]
                deltas += [(index, {"type": "input_json_delta", "partial_json": p}) for p in parts]
        gap = behaviour.stream_duration_seconds / max(1, len(deltas))
        sent = 0
        for index, block in enumerate(content):
            empty = dict(block, text="") if block["type"] == "text" else dict(block, input={})
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": empty,
                },
            )
            if index == 0 and call.provider != "bedrock":
                yield "ping", {"type": "ping"}  # the first-party stream sends one here
            for delta_index, delta in deltas:
                if delta_index != index:
                    continue
                await asyncio.sleep(behaviour.latency_seconds if sent == 0 else gap)
                sent += 1
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": delta,
                    },
                )
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        await asyncio.sleep(gap if sent else behaviour.latency_seconds)
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": self._usage(call, behaviour, behaviour.output_tokens),
            },
        )
        stop: dict[str, Any] = {"type": "message_stop"}
        if call.provider == "bedrock":
            stop["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": start["usage"]["input_tokens"],
                "outputTokenCount": behaviour.output_tokens,
                "invocationLatency": int((time.time() - call.started) * 1000),
                "firstByteLatency": int(behaviour.latency_seconds * 1000),
            }
        yield "message_stop", stop

    async def _stream(
        self, request: web.Request, call: _Call, behaviour: ModelBehaviour
    ) -> web.StreamResponse:
        bedrock = call.provider == "bedrock"
        response = web.StreamResponse(status=200)
        response.headers["request-id"] = _new_id("req")
        if bedrock:
            response.content_type = "application/vnd.amazon.eventstream"
            response.headers["x-amzn-bedrock-content-type"] = "application/json"
        else:
            response.content_type = "text/event-stream"
            response.headers["Cache-Control"] = "no-cache"
        await response.prepare(request)
        try:
            async for name, data in self._events(call, behaviour):
                await response.write(aws_event_frame(data) if bedrock else sse_event(name, data))
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away mid-stream; nothing left to tell it
        return response

    # -- token endpoint ------------------------------------------------------------------

    async def _token(self, request: web.Request, call: _Call) -> web.Response:
        """Google's OAuth2 JWT-bearer grant, as google-auth's service-account flow calls it.

        The JWT's signature is not checked (there is no key to check it against); its
        issuer, the service account's email, is what must have been accepted. Injected
        faults do not apply here.
        """
        form = await request.post()
        claims = _jwt_claims(str(form.get("assertion", "")))
        issuer = claims.get("iss") if claims else None
        call.credential = issuer if isinstance(issuer, str) else None
        expiry = claims.get("exp") if claims else None
        with self._lock:
            known = call.credential in self._state.service_accounts
        payload: dict[str, Any]
        if form.get("grant_type") != JWT_BEARER_GRANT:
            payload = {
                "error": "unsupported_grant_type",
                "error_description": "Invalid grant_type.",
            }
        elif call.credential is None:
            payload = {"error": "invalid_grant", "error_description": "Invalid JWT."}
        elif isinstance(expiry, int | float) and expiry < time.time():
            payload = {
                "error": "invalid_grant",
                "error_description": "Invalid JWT: Token must be a short-lived token "
                "and in a reasonable timeframe.",
            }
        elif not known:
            payload = {
                "error": "invalid_grant",
                "error_description": "Invalid grant: account not found",
            }
        else:
            token = f"ya29.fake-{uuid.uuid4().hex}"
            with self._lock:
                self._state.tokens.add(token)
            payload = {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
        status = 200 if "access_token" in payload else 400
        self._record(call, status)
        return web.json_response(payload, status=status)

    # -- responses -----------------------------------------------------------------------

    @staticmethod
    def _json_response(payload: Mapping[str, Any], status: int = 200) -> web.Response:
        response = web.json_response(payload, status=status)
        response.headers["request-id"] = _new_id("req")
        return response

    @staticmethod
    def _error_response(
        status: int,
        message: str | None = None,
        *,
        error_code: str | None = None,
        retry_after: float | None = None,
    ) -> web.Response:
        body = error_body(status, message, error_code)
        response = web.json_response(body, status=status)
        response.headers["request-id"] = body["request_id"]
        if retry_after is not None:
            response.headers["retry-after"] = _format_seconds(retry_after)
        return response

    # -- control API ---------------------------------------------------------------------

    def _add_control_routes(self, app: web.Application) -> None:
        def handler(
            action: Callable[[web.Request, Any], Any],
        ) -> Callable[[web.Request], Awaitable[web.Response]]:
            async def handle(request: web.Request) -> web.Response:
                body: Any = None
                if request.can_read_body:
                    try:
                        body = await request.json()
                    except ValueError:
                        return web.json_response({"error": "body is not JSON"}, status=400)
                try:
                    result = action(request, body)
                except (ValueError, TypeError, KeyError) as exc:
                    return web.json_response({"error": str(exc)}, status=400)
                return web.json_response({"ok": True} if result is None else result)

            return handle

        def info(request: web.Request, key: str) -> str:
            return request.match_info[key]

        routes = [
            ("POST", "/_control/keys", lambda r, b: self.accept_key(str(b["key"]))),
            ("DELETE", "/_control/keys/{key}", lambda r, b: self.revoke_key(info(r, "key"))),
            (
                "POST",
                "/_control/models/{name}",
                lambda r, b: self.set_model(info(r, "name"), _from_dict(ModelBehaviour, b or {})),
            ),
            ("DELETE", "/_control/models/{name}", lambda r, b: self.remove_model(info(r, "name"))),
            ("POST", "/_control/faults", lambda r, b: self.inject(_from_dict(Fault, b))),
            ("DELETE", "/_control/faults", lambda r, b: self.clear_faults()),
            ("GET", "/_control/requests", lambda r, b: [asdict(x) for x in self.requests()]),
            ("DELETE", "/_control/requests", lambda r, b: self.clear_requests()),
            ("POST", "/_control/reset", lambda r, b: self.reset()),
            (
                "POST",
                "/_control/service-accounts",
                lambda r, b: self.accept_service_account(str(b["email"])),
            ),
            ("POST", "/_control/deny", lambda r, b: self.deny(str(b["key"]), str(b["model"]))),
        ]
        for method, path, action in routes:
            app.router.add_route(method, path, handler(action))


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    """The payload of a compact JWS (signature not checked); None if it is malformed."""
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        decoded = [
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        ]
    except (ValueError, binascii.Error):
        return None
    header, claims = decoded
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return claims


# ---------------------------------------------------------------------------------------
# Driving a fake in another process


class FakeModelAPIClient:
    """The `FakeModelAPI` configuration methods, over the HTTP control API (urllib).

    Tests and the demo can take either object: this one drives a fake started elsewhere,
    e.g. by `python cluster/fakeapi.py --port N`.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        # No proxy: the fake is on loopback and must be reached directly.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_control/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ValueError(f"fake model API control {method} {path}: {detail}") from None

    @staticmethod
    def _quote(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    def accept_key(self, key: str) -> None:
        self._call("POST", "keys", {"key": key})

    def revoke_key(self, key: str) -> None:
        self._call("DELETE", f"keys/{self._quote(key)}")

    def accept_service_account(self, email: str) -> None:
        self._call("POST", "service-accounts", {"email": email})

    def deny(self, key: str, model: str) -> None:
        self._call("POST", "deny", {"key": key, "model": model})

    def set_model(self, name: str, behaviour: ModelBehaviour | None = None) -> None:
        self._call("POST", f"models/{self._quote(name)}", asdict(behaviour or ModelBehaviour()))

    def remove_model(self, name: str) -> None:
        self._call("DELETE", f"models/{self._quote(name)}")

    def inject(self, fault: Fault) -> None:
        self._call("POST", "faults", asdict(fault))

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def requests(self) -> list[RecordedRequest]:
        return [RecordedRequest(**item) for item in self._call("GET", "requests")]

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def reset(self) -> None:
        self._call("POST", "reset")


# ---------------------------------------------------------------------------------------
# Standalone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    parser.add_argument("--seed", type=int, default=0, help="seed for ModelBehaviour.error_rate")
    parser.add_argument(
        "--state-file", help="write {url, pid} here as JSON once serving; removed on exit"
    )
    parser.add_argument(
        "--accept-key", action="append", default=[], help="accept this credential (repeatable)"
    )
    args = parser.parse_args(argv)

    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())  # set before serving: no early-kill race
    api = FakeModelAPI(port=args.port, seed=args.seed).start()
    for key in args.accept_key:
        api.accept_key(key)
    try:
        if args.state_file:
            tmp = f"{args.state_file}.tmp"
            with open(tmp, "w") as handle:
                json.dump({"url": api.url, "pid": os.getpid()}, handle)
            os.replace(tmp, args.state_file)  # readers never see a half-written file
        print(api.url, flush=True)
        done.wait()
    finally:
        api.stop()
        if args.state_file:
            with contextlib.suppress(FileNotFoundError):
                os.remove(args.state_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cheapest SDK call per provider that proves a credential and a model, and the call
itself (I/O).

Which call, verified in the anthropic SDK 2.12 source:

- anthropic, gateway: `models.retrieve` — free; 401 bad key, 403 no access, 404 no model.
- vertex: `messages.count_tokens` — no models endpoint; counting is free and checks the
  project, region, IAM and model.
- bedrock: none — the SDK refuses `count_tokens` and has no `models`.
- foundry: none — `AnthropicFoundry.models` is None.

`message` (a 1-token `messages.create`, billed) works everywhere and is used only when the
spec asks for it. Clients get the credential as an argument, never from the operator's
environment, with retries off (the service retries with its own backoff) and a short
timeout. The credential lives in memory for the duration of the call only.
"""

from __future__ import annotations

import json
import re
import time
import typing
from dataclasses import dataclass
from typing import Any, Final

import anthropic

from harness_operator.api.model import ModelSpec, PreflightMethod, Provider
from harness_operator.preflight.verdict import PreflightOutcome, Verdict, from_status, unverified

MODELS_RETRIEVE: Final = "models.retrieve"
COUNT_TOKENS: Final = "messages.count_tokens"
MESSAGE: Final = "messages.create"
_CALLS: Final = {
    PreflightMethod.MODELS_RETRIEVE: MODELS_RETRIEVE,
    PreflightMethod.COUNT_TOKENS: COUNT_TOKENS,
    PreflightMethod.MESSAGE: MESSAGE,
}
AUTO: Final = {
    Provider.ANTHROPIC: MODELS_RETRIEVE,
    Provider.GATEWAY: MODELS_RETRIEVE,
    Provider.VERTEX: COUNT_TOKENS,
}
UNSUPPORTED: Final = {
    Provider.BEDROCK: frozenset({MODELS_RETRIEVE, COUNT_TOKENS}),
    Provider.VERTEX: frozenset({MODELS_RETRIEVE}),
    Provider.FOUNDRY: frozenset({MODELS_RETRIEVE}),
}
GOOGLE_SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
PING: Final = [{"role": "user", "content": "ping"}]


def _known_models() -> tuple[str, ...]:
    for arg in typing.get_args(anthropic.types.Model):
        if typing.get_origin(arg) is typing.Literal:
            return tuple(str(a) for a in typing.get_args(arg))
    return ()


KNOWN_MODELS: Final = _known_models()
"""Model ids the installed SDK knows (first-party spelling)."""


def dated_snapshot(name: str) -> str | None:
    """The dated snapshot `name` is an alias of, when the SDK knows one (e.g.
    `claude-sonnet-4-5` -> `claude-sonnet-4-5-20250929`): such an alias can be re-pointed
    by the provider, so the operator warns (ModelPinned=False) without rejecting it."""
    for known in KNOWN_MODELS:
        suffix = known.removeprefix(name + "-")
        if suffix != known and len(suffix) == 8 and suffix.isdigit():
            return known
    return None


def call_for(model: ModelSpec) -> str | None:
    """The SDK call that checks `model`, or None when no free call exists (auto)."""
    method = model.preflight.method
    if method is PreflightMethod.AUTO:
        return AUTO.get(model.provider)
    return _CALLS[method]


@dataclass(frozen=True)
class CheckRequest:
    """One check: the model section and the credential's content (a key, a token, or a
    service-account key file), held in memory only."""

    model: ModelSpec
    credential: str | None

    def __repr__(self) -> str:  # never print the credential
        return f"CheckRequest({self.model.describe()}, credential=<redacted>)"


def run_check(request: CheckRequest, timeout: float) -> Verdict:
    """Make the call and turn the answer into a verdict. Never raises for provider or
    network problems; the credential never appears in the result."""
    model = request.model
    call = call_for(model)
    if call is None:
        return unverified(
            "NoFreeCheck",
            f"{model.provider} has no free credential check; set"
            " spec.model.preflight.method: message to verify with a 1-token (billed) message",
        )
    if call in UNSUPPORTED.get(model.provider, frozenset()):
        return Verdict(
            PreflightOutcome.FAILED,
            "UnsupportedMethod",
            f"{model.provider} does not support {call}; choose another spec.model.preflight.method",
            call,
        )
    started = time.monotonic()
    try:
        client = _client(request, timeout)
        _call(client, call, model.name)
    except anthropic.APIStatusError as err:
        verdict = _status_verdict(err, call)
    except anthropic.APITimeoutError:
        verdict = Verdict(
            PreflightOutcome.INCONCLUSIVE, "Timeout", f"{call}: no answer in {timeout}s", call
        )
    except anthropic.APIConnectionError:
        verdict = Verdict(
            PreflightOutcome.INCONCLUSIVE,
            "Unreachable",
            f"{call}: the endpoint could not be reached",
            call,
        )
    except CredentialFileError as err:
        verdict = Verdict(PreflightOutcome.FAILED, "InvalidCredentials", str(err), call)
    except TokenExchangeError as err:
        verdict = Verdict(err.outcome, err.reason, str(err), call)
    else:
        verdict = Verdict(
            PreflightOutcome.PASSED,
            "Verified",
            f"{call} accepted the credential for {model.name}",
            call,
        )
    latency = time.monotonic() - started
    return Verdict(
        verdict.outcome,
        verdict.reason,
        _redact(verdict.message, request.credential),
        verdict.method,
        verdict.status_code,
        verdict.retry_after,
        latency,
    )


def _call(client: Any, call: str, model: str) -> None:
    if call == MODELS_RETRIEVE:
        client.models.retrieve(model)
    elif call == COUNT_TOKENS:
        client.messages.count_tokens(model=model, messages=PING)
    else:
        client.messages.create(model=model, max_tokens=1, messages=PING)


def _client(request: CheckRequest, timeout: float) -> Any:
    model, credential = request.model, request.credential
    common: dict[str, Any] = {"max_retries": 0, "timeout": timeout}
    base_url = model.base_url
    if model.provider is Provider.ANTHROPIC:
        return anthropic.Anthropic(api_key=credential, base_url=base_url, **common)
    if model.provider is Provider.GATEWAY:
        return anthropic.Anthropic(auth_token=credential, base_url=base_url, **common)
    if model.provider is Provider.BEDROCK:
        return anthropic.AnthropicBedrock(
            api_key=credential, aws_region=model.region, base_url=base_url, **common
        )
    if model.provider is Provider.FOUNDRY:
        # Exactly one of resource and base_url (the API rules enforce it).
        where = {"resource": model.resource} if model.resource else {"base_url": base_url}
        return anthropic.AnthropicFoundry(api_key=credential, **where, **common)
    token, project = _google_token(credential or "", timeout)
    if model.project_id or project:
        common["project_id"] = model.project_id or project
    return anthropic.AnthropicVertex(
        region=model.region or "", access_token=token, base_url=base_url, **common
    )


class CredentialFileError(Exception):
    """A service-account key file that is not one."""


class TokenExchangeError(Exception):
    """The OAuth token exchange for a service-account key did not give a token."""

    def __init__(self, message: str, reason: str, outcome: PreflightOutcome) -> None:
        super().__init__(message)
        self.reason = reason
        self.outcome = outcome


def _google_token(key_file: str, timeout: float) -> tuple[str, str | None]:
    """An access token (and the project) for a Google service-account key file, from the
    token endpoint the file names."""
    # Imported here: only Vertex checks need google-auth.
    import google.auth.exceptions
    import google.auth.transport.requests
    import requests
    from google.oauth2 import service_account

    try:
        info = json.loads(key_file)
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[GOOGLE_SCOPE]
        )
    except (ValueError, KeyError, TypeError):
        raise CredentialFileError(
            "the credential is not a Google service-account key file (JSON with client_email,"
            " private_key and token_uri)"
        ) from None
    session = requests.Session()
    try:
        credentials.refresh(google.auth.transport.requests.Request(session))
    except google.auth.exceptions.RefreshError as err:
        retryable = bool(getattr(err, "retryable", False))
        raise TokenExchangeError(
            "the service account's token exchange was refused"
            + (" (temporarily)" if retryable else ""),
            "ProviderError" if retryable else "InvalidCredentials",
            PreflightOutcome.INCONCLUSIVE if retryable else PreflightOutcome.FAILED,
        ) from None
    except google.auth.exceptions.TransportError:
        raise TokenExchangeError(
            "the service account's token endpoint could not be reached",
            "Unreachable",
            PreflightOutcome.INCONCLUSIVE,
        ) from None
    finally:
        session.close()
    project = info.get("project_id") if isinstance(info, dict) else None
    return str(credentials.token), project if isinstance(project, str) else None


def _status_verdict(err: anthropic.APIStatusError, call: str) -> Verdict:
    body: dict[str, Any] = err.body if isinstance(err.body, dict) else {}
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    error_type = str(error.get("type") or "")
    detail = str(error.get("message") or "")[:200]
    request_id = err.response.headers.get("request-id")
    if request_id:
        detail = f"{detail} (request-id {request_id})" if detail else f"request-id {request_id}"
    details: dict[str, Any] = error["details"] if isinstance(error.get("details"), dict) else {}
    code = details.get("error_code")  # where the API puts e.g. a spend-limit code
    verdict = from_status(
        err.status_code,
        error_type,
        detail,
        error_code=code if isinstance(code, str) else None,
        method=call,
    )
    return Verdict(
        verdict.outcome,
        verdict.reason,
        verdict.message,
        call,
        err.status_code,
        _retry_after(err.response.headers),
    )


def _retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            continue
    return None


def _redact(text: str, credential: str | None) -> str:
    """`text` without the credential, or any long run of it (belt and braces: messages are
    built from provider error bodies)."""
    if credential:
        for line in {credential, *credential.split()}:
            if len(line) >= 8:
                text = text.replace(line, "<redacted>")
    return re.sub(r"sk-[A-Za-z0-9_-]{8,}", "sk-<redacted>", text)

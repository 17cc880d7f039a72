"""Credential and model preflight: the call per provider through the real anthropic SDK
(against the local fake model API), how answers become verdicts, the cache, the backoff of
inconclusive checks, the bound on concurrent checks, and that the key never leaks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fakeapi import FakeModelAPI, Fault, ModelBehaviour
from harness_operator.api.model import ModelSpec
from harness_operator.preflight import (
    CheckRequest,
    PreflightOutcome,
    PreflightService,
    Verdict,
    backoff,
    run_check,
)

MODEL = "claude-sonnet-4-6"
KEY = "sk-test-preflight-0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModelAPI]:
    with FakeModelAPI() as api:
        yield api


@pytest.fixture
def api(server: FakeModelAPI) -> FakeModelAPI:
    server.reset()
    server.accept_key(KEY)
    server.set_model(MODEL, ModelBehaviour())
    return server


def model(api: FakeModelAPI, **fields: Any) -> ModelSpec:
    base: dict[str, Any] = {
        "provider": "anthropic",
        "name": MODEL,
        "baseURL": api.url,
        "credentials": {"secretRef": {"name": "k", "key": "api-key"}},
    }
    return ModelSpec.model_validate({**base, **fields})


def check(spec: ModelSpec, credential: str | None = KEY) -> Verdict:
    return run_check(CheckRequest(spec, credential), timeout=5.0)


def test_anthropic_passes_with_a_free_models_call(api: FakeModelAPI) -> None:
    verdict = check(model(api))
    assert (verdict.outcome, verdict.reason, verdict.method) == (
        PreflightOutcome.PASSED,
        "Verified",
        "models.retrieve",
    )
    (request,) = api.requests()
    assert (request.endpoint, request.model, request.credential) == (
        "models.retrieve",
        MODEL,
        KEY,
    )
    assert verdict.latency_seconds is not None
    assert verdict.latency_seconds < 5


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda api: api.revoke_key(KEY), "InvalidCredentials"),
        (lambda api: api.deny(KEY, MODEL), "PermissionDenied"),
        (lambda api: api.remove_model(MODEL), "ModelNotFound"),
    ],
    ids=["401", "403", "404"],
)
def test_a_refusal_fails(api: FakeModelAPI, setup: Any, reason: str) -> None:
    setup(api)
    verdict = check(model(api))
    assert (verdict.outcome, verdict.reason) == (PreflightOutcome.FAILED, reason)
    assert verdict.condition_status == "False"
    assert verdict.holds


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=429, retry_after=7), "RateLimited"),
        (Fault(status=529), "Overloaded"),
        (Fault(status=500), "ProviderError"),
        (Fault(status=503), "ProviderError"),
        (Fault(status=429, error_code="enforced_spend_limit_reached"), "SpendLimit"),
    ],
    ids=["429", "529", "500", "503", "spend-limit"],
)
def test_provider_trouble_is_inconclusive(api: FakeModelAPI, fault: Fault, reason: str) -> None:
    api.inject(fault)
    verdict = check(model(api))
    assert (verdict.outcome, verdict.reason) == (PreflightOutcome.INCONCLUSIVE, reason)
    assert verdict.condition_status == "Unknown"
    assert verdict.retry_after == fault.retry_after


def test_timeout_is_inconclusive(api: FakeModelAPI) -> None:
    api.inject(Fault(status=0, delay_seconds=2.0))
    verdict = run_check(CheckRequest(model(api), KEY), timeout=0.3)
    assert (verdict.outcome, verdict.reason) == (PreflightOutcome.INCONCLUSIVE, "Timeout")


def test_unreachable_is_inconclusive(api: FakeModelAPI) -> None:
    verdict = check(model(api, baseURL="http://127.0.0.1:9"))
    assert (verdict.outcome, verdict.reason) == (PreflightOutcome.INCONCLUSIVE, "Unreachable")


def test_gateway_sends_a_bearer_token(api: FakeModelAPI) -> None:
    verdict = check(model(api, provider="gateway"))
    assert verdict.outcome is PreflightOutcome.PASSED
    assert api.requests()[-1].credential == KEY


def test_count_tokens_on_request(api: FakeModelAPI) -> None:
    verdict = check(model(api, preflight={"method": "countTokens"}))
    assert (verdict.outcome, verdict.method) == (PreflightOutcome.PASSED, "messages.count_tokens")
    assert api.requests()[-1].endpoint == "count_tokens"


def bedrock(api: FakeModelAPI, **preflight: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "provider": "bedrock",
            "name": "anthropic.claude-sonnet-4-6",
            "region": "us-east-1",
            "baseURL": api.url,
            "credentials": {"secretRef": {"name": "k", "key": "token"}},
            "preflight": preflight,
        }
    )


def test_bedrock_has_no_free_check(api: FakeModelAPI) -> None:
    verdict = check(bedrock(api))
    assert (verdict.outcome, verdict.reason) == (PreflightOutcome.UNVERIFIED, "NoFreeCheck")
    assert not verdict.holds
    assert api.requests() == [], "nothing billed without opting in"


def test_bedrock_opts_in_to_a_one_token_message(api: FakeModelAPI) -> None:
    verdict = check(bedrock(api, method="message"))
    assert (verdict.outcome, verdict.method) == (PreflightOutcome.PASSED, "messages.create")
    (request,) = api.requests()
    assert (request.provider, request.credential) == ("bedrock", KEY)


def test_bedrock_refuses_models_retrieve(api: FakeModelAPI) -> None:
    verdict = check(bedrock(api, method="modelsRetrieve"))
    assert (verdict.outcome, verdict.reason) == (PreflightOutcome.FAILED, "UnsupportedMethod")


def test_foundry_message(api: FakeModelAPI) -> None:
    spec = ModelSpec.model_validate(
        {
            "provider": "foundry",
            "name": MODEL,
            "baseURL": api.url + "/anthropic/",
            "credentials": {"secretRef": {"name": "k", "key": "key"}},
            "preflight": {"method": "message"},
        }
    )
    assert check(spec).outcome is PreflightOutcome.PASSED
    assert api.requests()[-1].provider == "foundry"


def service_account_key(api: FakeModelAPI, email: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "acme-agents",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": email,
            "client_id": "1",
            "token_uri": api.url + "/token",
        }
    )


def vertex(api: FakeModelAPI) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "provider": "vertex",
            "name": "claude-sonnet-4-6",
            "region": "us-east5",
            "baseURL": api.url + "/v1",
            "credentials": {"secretRef": {"name": "sa", "key": "key.json"}},
        }
    )


def test_vertex_exchanges_the_key_file_and_counts_tokens(api: FakeModelAPI) -> None:
    email = "agent@acme-agents.iam.gserviceaccount.com"
    api.accept_service_account(email)
    verdict = check(vertex(api), service_account_key(api, email))
    assert (verdict.outcome, verdict.method) == (PreflightOutcome.PASSED, "messages.count_tokens")
    assert [r.endpoint for r in api.requests()] == ["token", "count_tokens"]
    assert api.requests()[-1].provider == "vertex"


def test_vertex_unknown_service_account_fails(api: FakeModelAPI) -> None:
    verdict = check(vertex(api), service_account_key(api, "stranger@x.iam.gserviceaccount.com"))
    assert (verdict.outcome, verdict.reason) == (PreflightOutcome.FAILED, "InvalidCredentials")


def test_vertex_key_that_is_not_a_key_file_fails(api: FakeModelAPI) -> None:
    verdict = check(vertex(api), "not json")
    assert (verdict.outcome, verdict.reason) == (PreflightOutcome.FAILED, "InvalidCredentials")
    assert api.requests() == []


def test_the_key_is_never_in_a_verdict_or_its_repr(api: FakeModelAPI) -> None:
    api.revoke_key(KEY)
    request = CheckRequest(model(api), KEY)
    verdict = run_check(request, timeout=5.0)
    assert KEY not in repr(verdict)
    assert KEY not in repr(request)


# --- the service -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Calls:
    """A stand-in check that answers from a script and counts its calls."""

    def __init__(self, *answers: Verdict) -> None:
        self.answers = list(answers)
        self.count = 0

    def __call__(self, request: CheckRequest, timeout: float) -> Verdict:
        self.count += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


PASSED = Verdict(PreflightOutcome.PASSED, "Verified", "ok")
FAILED = Verdict(PreflightOutcome.FAILED, "InvalidCredentials", "no")
BUSY = Verdict(PreflightOutcome.INCONCLUSIVE, "RateLimited", "429")


def request(credential: str = KEY) -> CheckRequest:
    spec = ModelSpec.model_validate(
        {
            "provider": "anthropic",
            "name": MODEL,
            "credentials": {"secretRef": {"name": "k", "key": "api-key"}},
        }
    )
    return CheckRequest(spec, credential)


def test_verdicts_are_cached_per_credential_for_the_ttl() -> None:
    clock, calls = Clock(), Calls(PASSED)
    service = PreflightService(ttl_seconds=600, executor=None, clock=clock, check=calls)
    assert service.verdict(request()) == PASSED
    assert service.verdict(request()) == PASSED
    assert calls.count == 1
    service.verdict(request("sk-test-rotated-key-000"))
    assert calls.count == 2, "a new credential is checked at once"
    clock.now += 601
    service.verdict(request())
    assert calls.count == 3, "expired"


def test_inconclusive_checks_back_off() -> None:
    clock, calls = Clock(), Calls(BUSY, BUSY, PASSED)
    service = PreflightService(executor=None, clock=clock, check=calls)
    first = service.verdict(request())
    assert first.outcome is PreflightOutcome.INCONCLUSIVE
    assert first.retry_in == backoff(1)
    clock.now += backoff(1) - 0.1
    assert service.verdict(request()).outcome is PreflightOutcome.INCONCLUSIVE
    assert calls.count == 1, "no retry before the backoff"
    clock.now += 0.2
    second = service.verdict(request())
    assert (calls.count, second.retry_in) == (2, backoff(2))
    clock.now += backoff(2)
    assert service.verdict(request()) == PASSED
    assert backoff(1) < backoff(2) < backoff(3)
    assert backoff(30) == 300.0


def test_retry_after_stretches_the_backoff() -> None:
    clock = Clock()
    slow = Verdict(PreflightOutcome.INCONCLUSIVE, "RateLimited", "429", retry_after=40.0)
    service = PreflightService(executor=None, clock=clock, check=Calls(slow))
    assert service.verdict(request()).retry_in == 40.0


def test_a_failed_verdict_is_cached_too() -> None:
    calls = Calls(FAILED)
    service = PreflightService(executor=None, clock=Clock(), check=calls)
    service.verdict(request())
    assert service.verdict(request()) == FAILED
    assert calls.count == 1


def test_background_checks_answer_checking_then_wake_the_waiter() -> None:
    release = threading.Event()
    woken: list[object] = []
    done = threading.Event()

    def slow(request: CheckRequest, timeout: float) -> Verdict:
        release.wait(5)
        return PASSED

    def wake(waiter: object) -> None:
        woken.append(waiter)
        done.set()

    service = PreflightService(on_done=wake, check=slow)
    try:
        assert service.verdict(request(), ("ns", "a")).outcome is PreflightOutcome.CHECKING
        assert service.verdict(request(), ("ns", "b")).outcome is PreflightOutcome.CHECKING
        release.set()
        assert done.wait(5)
        assert service.verdict(request()) == PASSED
        assert sorted(woken) == [("ns", "a"), ("ns", "b")]
    finally:
        service.shutdown()


def test_concurrent_checks_are_bounded() -> None:
    running, peak, lock = 0, 0, threading.Lock()
    release, started = threading.Event(), threading.Semaphore(0)

    def slow(request: CheckRequest, timeout: float) -> Verdict:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        started.release()
        release.wait(5)
        with lock:
            running -= 1
        return PASSED

    service = PreflightService(max_concurrent=2, check=slow)
    try:
        for i in range(6):
            service.verdict(request(f"sk-test-distinct-key-{i:04d}"))
        assert started.acquire(timeout=5)
        assert started.acquire(timeout=5)
        assert not started.acquire(timeout=0.3), "a third check started while two ran"
        release.set()
        for _ in range(4):
            assert started.acquire(timeout=5)
        assert peak == 2
    finally:
        release.set()
        service.shutdown()


def test_stale_verdicts_are_served_while_refreshing() -> None:
    clock, release, answered = Clock(), threading.Event(), threading.Semaphore(0)
    answers = [PASSED, FAILED]

    def gated(request: CheckRequest, timeout: float) -> Verdict:
        if len(answers) == 1:  # the refresh
            release.wait(5)
        return answers.pop(0)

    service = PreflightService(
        ttl_seconds=10, clock=clock, check=gated, on_done=lambda _: answered.release()
    )
    try:
        assert service.verdict(request(), "w").outcome is PreflightOutcome.CHECKING
        assert answered.acquire(timeout=5)
        clock.now += 11
        assert service.verdict(request(), "w") == PASSED, "stale, served while refreshing"
        release.set()
        assert answered.acquire(timeout=5)
        assert service.verdict(request()) == FAILED
    finally:
        release.set()
        service.shutdown()

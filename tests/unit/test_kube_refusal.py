"""Which apiserver answers say "this object cannot be written as it is" (reported as
Degraded, ApplyRefused) and which are trouble to retry (raised: the pass backs off)."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from harness_operator.kube.client import refusal


def answer(status: int, message: str | None = None, reason: str = "") -> ApiException:
    err = ApiException(status=status, reason=reason)
    err.body = json.dumps({"kind": "Status", "message": message}) if message else None
    return err


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_refusals_carry_the_apiservers_message(status: int) -> None:
    message = 'Deployment.apps "a-stable" is invalid: spec.template...: must be <= cpu limit'
    assert refusal(answer(status, message)) == message


@pytest.mark.parametrize("status", [409, 429, 500, 503, 504])
def test_trouble_to_retry_is_not_a_refusal(status: int) -> None:
    assert refusal(answer(status, "try again")) is None


def test_a_refusal_without_a_status_body_still_says_something() -> None:
    assert refusal(answer(422, reason="Unprocessable Entity")) == "Unprocessable Entity"
    err = answer(400)
    err.body = b"not json"
    assert refusal(err) == "HTTP 400"


def test_a_body_that_does_not_fit_the_schema_is_a_refusal_despite_the_500() -> None:
    message = (
        "failed to create typed patch object (ns/a-stable; apps/v1, Kind=Deployment):"
        " .spec.template.spec.affinity.: field not declared in schema"
    )
    assert refusal(answer(500, message)) == message
    assert refusal(answer(500, "etcdserver: request timed out")) is None

"""The API the release engine reads and writes: the `rollout` fields (blue/green and A/B
settings, gradual promotion, the 1s interval floor), the release status and its wire form,
and what a live Deployment tells the engine."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from harness_operator.analysis import CheckResult, Outcome, Round
from harness_operator.api import HarnessDeploymentSpec, Rollout
from harness_operator.api.schema import openapi_schema
from harness_operator.api.status import CheckOutcome, HarnessDeploymentStatus, Phase, Stage
from harness_operator.naming import LABEL_REVISION
from harness_operator.rollout import WorkloadState
from harness_operator.rollout.rounds import Limits, culprit, describe_check, tally

MATCH = [{"headers": {"x-canary": {"exact": "1"}}}]


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"interval": "500ms"}, "rollout.interval must be at least 1s"),
        ({"iterations": 5}, "rollout.iterations applies only to strategies blueGreen and abTest"),
        ({"strategy": "abTest"}, "rollout.match is required by strategy abTest"),
        ({"match": MATCH}, "rollout.match is required by strategy abTest and applies only"),
        (
            {"strategy": "abTest", "match": MATCH, "mirror": True},
            "rollout.mirror applies only to strategies canary and blueGreen",
        ),
        (
            {"strategy": "abTest", "match": [{}]},
            "rollout.match[]: set headers, cookie or both",
        ),
        (
            {"strategy": "abTest", "match": [{"headers": {"x": {"exact": "1", "prefix": "1"}}}]},
            "rollout.match[].headers: set exactly one of exact, prefix and regex",
        ),
        (
            {"strategy": "abTest", "match": [{"headers": {"X-Canary": {"exact": "1"}}}]},
            "rollout.match[].headers: header names must be lowercase",
        ),
        (
            {
                "strategy": "abTest",
                "match": [{"cookie": "a=b", "headers": {"cookie": {"exact": "a=b"}}}],
            },
            "rollout.match[]: set either cookie or a `cookie` header, not both",
        ),
        ({"strategy": "abTest", "match": [{"cookie": "no value"}]}, "match.0.cookie"),
        ({"promotionStepWeight": 101}, "promotionStepWeight"),
    ],
)
def test_invalid_rollouts_are_rejected(rollout: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Rollout.model_validate(rollout)
    assert message in str(caught.value)


def test_rollout_defaults() -> None:
    rollout = Rollout()
    assert rollout.iterations is None
    assert rollout.iteration_count == 3
    assert rollout.promotion_step_weight == 0
    assert rollout.mirror_percent == 0
    assert rollout.http_matches() == []
    assert Rollout(interval="1s").interval_seconds == 1
    assert Rollout(mirror=True).mirror_percent == 100
    assert Rollout(mirror=True, mirror_percentage=5).mirror_percent == 5
    assert Rollout(strategy="blueGreen", iterations=7).iteration_count == 7


def test_step_pauses() -> None:
    rollout = Rollout.model_validate({"steps": [{"weight": 5}, {"weight": 50, "pause": "1m30s"}]})
    assert [rollout.step_pause_seconds(i) for i in range(3)] == [0, 90, 0]
    assert Rollout().step_pause_seconds(0) == 0


def test_ab_matches_become_istio_match_requests() -> None:
    rollout = Rollout.model_validate(
        {
            "strategy": "abTest",
            "match": [
                {"headers": {"x-user-group": {"prefix": "beta"}, "x-region": {"regex": "eu-.*"}}},
                {"cookie": "canary=always", "headers": {"x-tenant": {"exact": "acme"}}},
            ],
        }
    )
    first, second = rollout.http_matches()
    assert first == {
        "headers": {"x-user-group": {"prefix": "beta"}, "x-region": {"regex": "eu-.*"}}
    }
    cookie = second["headers"]["cookie"]["regex"]
    assert second["headers"]["x-tenant"] == {"exact": "acme"}
    for header in ("canary=always", "a=1; canary=always", "a=1;canary=always; b=2"):
        assert re.fullmatch(cookie, header), header
    for header in ("canary=alwaysx", "xcanary=always", "a=1; canary=never"):
        assert not re.fullmatch(cookie, header), header


def test_cookie_values_are_escaped_in_the_regex() -> None:
    rollout = Rollout.model_validate({"strategy": "abTest", "match": [{"cookie": "v=1.2+x"}]})
    cookie = rollout.http_matches()[0]["headers"]["cookie"]["regex"]
    assert re.fullmatch(cookie, "v=1.2+x")
    assert not re.fullmatch(cookie, "v=1x22x")


def test_crd_rules_for_the_new_rollout_fields() -> None:
    rollout = openapi_schema()["properties"]["spec"]["properties"]["rollout"]

    def rules(node: dict[str, Any]) -> list[str]:
        return [r["rule"] for r in node.get("x-kubernetes-validations", [])]

    assert "duration(self) >= duration('1s')" in " ".join(rules(rollout["properties"]["interval"]))
    joined = " ".join(rules(rollout))
    assert "self.strategy == 'abTest' ? has(self.match) : !has(self.match)" in joined
    assert "!has(self.iterations)" in joined
    match = rollout["properties"]["match"]
    assert match["maxItems"] == 8
    headers = match["items"]["properties"]["headers"]
    assert headers["maxProperties"] == 16
    assert rules(headers["additionalProperties"]) == [
        "(has(self.exact) ? 1 : 0) + (has(self.prefix) ? 1 : 0) + (has(self.regex) ? 1 : 0) == 1"
    ]
    assert rollout["properties"]["promotionStepWeight"]["default"] == 0


def test_status_schema_keeps_free_form_parts() -> None:
    status = openapi_schema()["properties"]["status"]["properties"]
    assert status["stableSpec"]["x-kubernetes-preserve-unknown-fields"] is True
    result = status["lastAnalysis"]["properties"]["results"]["items"]
    assert result["x-kubernetes-preserve-unknown-fields"] is True
    assert set(result["properties"]) == {
        "name",
        "outcome",
        "value",
        "stableValue",
        "min",
        "max",
        "message",
    }
    assert status["phase"]["enum"] == [p.value for p in Phase]
    assert status["stage"]["enum"] == [s.value for s in Stage]
    assert status["rollback"]["properties"]["at"]["format"] == "date-time"


def test_status_wire_form() -> None:
    cest = timezone(timedelta(hours=2))
    status = HarnessDeploymentStatus(
        phase=Phase.PROGRESSING,
        stage=Stage.ANALYSING,
        step_started_at=datetime(2026, 3, 1, 14, 0, 5, tzinfo=cest),
        release_started_at=datetime(2026, 3, 1, 12, 0, 0, 250000),  # naive: taken as UTC
        stable_spec={"image": "x:1", "future": {"field": True}},
        consumed_controls={"harness.dev/promote": "full"},
        last_analysis={
            "time": "2026-03-01T12:00:04.5Z",
            "outcome": "Pass",
            "results": [{"name": "error-rate", "outcome": "Pass", "value": 0.0, "relative": 1}],
        },
    )
    wire = status.to_k8s()
    assert wire["stepStartedAt"] == "2026-03-01T12:00:05Z"
    assert wire["releaseStartedAt"] == "2026-03-01T12:00:00.250000Z"
    assert wire["lastAnalysis"]["time"] == "2026-03-01T12:00:04.500000Z"
    assert wire["lastAnalysis"]["results"][0]["relative"] == 1, "unknown fields kept"
    assert wire["stableSpec"]["future"] == {"field": True}
    assert "paused" not in wire
    assert "rollback" not in wire
    assert HarnessDeploymentStatus.from_k8s(wire) == status
    assert HarnessDeploymentStatus.from_k8s(None) == HarnessDeploymentStatus()
    assert status.in_release
    assert not HarnessDeploymentStatus(phase=Phase.ROLLED_BACK).in_release


def test_stable_spec_round_trips_to_the_same_spec() -> None:
    spec = HarnessDeploymentSpec.model_validate(
        {"image": "ghcr.io/acme/x:1", "rollout": {"strategy": "abTest", "match": MATCH}}
    )
    status = HarnessDeploymentStatus(stable_spec=spec.to_k8s())
    stored = HarnessDeploymentStatus.from_k8s(status.to_k8s())
    assert HarnessDeploymentSpec.model_validate(stored.stable_spec) == spec


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": 4},
        "spec": {
            "replicas": 3,
            "template": {"metadata": {"labels": {LABEL_REVISION: "abc"}}},
        },
        "status": {
            "observedGeneration": 4,
            "replicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
            **status,
        },
    }


def test_workload_state_of_a_complete_rollout() -> None:
    seen = WorkloadState.from_deployment(deployment())
    assert seen == WorkloadState(
        exists=True, desired=3, updated=3, available=3, ready=True, revision="abc"
    )
    assert seen.runs("abc")
    assert seen.serves("abc")
    assert not seen.runs("def")
    assert WorkloadState.from_deployment(None) == WorkloadState()


@pytest.mark.parametrize(
    "status",
    [
        {"observedGeneration": 3},
        {"updatedReplicas": 2},
        {"replicas": 4},
        {"availableReplicas": 2},
    ],
)
def test_workload_state_of_an_incomplete_rollout(status: dict[str, Any]) -> None:
    assert not WorkloadState.from_deployment(deployment(**status)).ready


def test_deadline_exceeded_counts_only_for_the_current_generation() -> None:
    stuck = {
        "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        ],
        "availableReplicas": 1,
    }
    assert WorkloadState.from_deployment(deployment(**stuck)).stuck("abc")
    stale = WorkloadState.from_deployment(deployment(**stuck, observedGeneration=3))
    assert not stale.deadline_exceeded


def test_a_deployment_scaled_to_zero_is_ready_but_serves_nothing() -> None:
    empty = deployment(replicas=0, updatedReplicas=0, availableReplicas=0)
    empty["spec"]["replicas"] = 0
    seen = WorkloadState.from_deployment(empty)
    assert seen.runs("abc")
    assert not seen.serves("abc")


def test_timestamps_are_utc() -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    status = HarnessDeploymentStatus.model_validate({"stepStartedAt": "2026-03-01T14:00:00+02:00"})
    assert status.step_started_at == moment
    assert status.step_started_at is not None
    assert status.step_started_at.tzinfo is UTC


def test_the_analysis_modules_rounds_are_understood() -> None:
    """`harness_operator.analysis.Round` fits the engine's `AnalysisRound` protocol."""
    at = datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
    failing = CheckResult(
        name="latency",
        outcome=Outcome.FAIL,
        value=0.9,
        stable_value=0.5,
        min=None,
        max=1.25,
        relative=True,
        message="canary p95 0.9s is 1.8x stable",
    )
    counted = tally(Round(at, (failing,)), HarnessDeploymentStatus(), Limits(1, 3))
    assert counted is not None
    assert counted.breach == "AnalysisFailed"
    assert counted.record.time == at
    assert counted.record.outcome is CheckOutcome.FAIL
    check = culprit(counted.record)
    assert check is not None
    assert describe_check(check).startswith("check latency (canary 0.9 / stable 0.5) = 1.8")
    again = HarnessDeploymentStatus(last_analysis=counted.record)
    assert tally(Round(at, (failing,)), again, Limits(1, 3)) is None

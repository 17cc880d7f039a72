"""Fail fast: a release rolls back from every state it can wait in, at the first tick that
reaches a limit, traffic first; each round counts once; the rollback says why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from harness_operator.api.status import AnalysisRecord, CheckOutcome, Phase, Stage
from harness_operator.rollout import CONTROL_ABORT, CONTROL_PAUSE, REASON_ANALYSIS_FAILED
from harness_operator.rollout.rounds import culprit, describe_check
from unit.test_rollout_driver import Release, canned_round, harness_spec, rollback_invariant

Given = Callable[[], Release]


def mid_step() -> Release:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 30, limit=60)
    release.tick(3)
    return release


def in_step_pause() -> Release:
    release = Release.at_rest(spec=harness_spec(steps=[{"weight": 20, "pause": "5m"}]))
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 20, limit=60)
    release.run_for(60)  # past the interval, inside the pause
    return release


def paused_by_hand() -> Release:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 20, limit=60)
    release.annotate(CONTROL_PAUSE)
    release.run_for(30)
    assert release.phase is Phase.PAUSED
    return release


def canary_gone_unready() -> Release:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 20, limit=60)
    release.canary.broken = True
    release.canary.changed_at = release.now
    release.tick(2)
    assert release.weight == 0, "no available canary pod: no traffic to it"
    assert release.status.not_ready_since is not None
    return release


def mirroring() -> Release:
    release = Release.at_rest(spec=harness_spec(mirror=True))
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.MIRRORING, limit=10)
    release.tick()
    return release


def blue_green() -> Release:
    release = Release.at_rest(spec=harness_spec(strategy="blueGreen", iterations=5))
    release.release("2.0.0")
    release.run_until(lambda r: (r.status.iterations or 0) >= 2, limit=60)
    return release


def ab_test() -> Release:
    spec = harness_spec(strategy="abTest", match=[{"headers": {"x-canary": {"exact": "1"}}}])
    release = Release.at_rest(spec=spec)
    release.release("2.0.0")
    release.run_until(lambda r: (r.status.iterations or 0) >= 1, limit=60)
    return release


def last_step() -> Release:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 50, limit=80)
    return release


WAITING_STATES: dict[str, Given] = {
    "mid-step": mid_step,
    "step pause": in_step_pause,
    "manual pause": paused_by_hand,
    "canary not ready mid-step": canary_gone_unready,
    "mirroring": mirroring,
    "blue/green": blue_green,
    "A/B": ab_test,
    "last step": last_step,
}


@pytest.mark.parametrize("given", WAITING_STATES.values(), ids=WAITING_STATES.keys())
def test_failure_limit_rolls_back_from_every_waiting_state(given: Given) -> None:
    release = given()
    release.invariants.append(rollback_invariant())
    stable = release.status.stable_revision
    before = release.history[-1].plan.state
    release.verdict = "Fail"

    release.tick()
    assert release.status.failed_checks == 1
    assert release.phase in (Phase.PROGRESSING, Phase.PAUSED)
    assert release.note("RoundFailed").type == "Warning"

    plan = release.tick()
    assert release.phase is Phase.ROLLED_BACK
    assert plan.route_first is (
        before.canary_weight > 0 or before.mirror_percent > 0 or bool(before.canary_match)
    )
    assert (plan.state.canary_weight, plan.state.mirror_percent, plan.state.canary_match) == (
        0,
        0,
        (),
    )
    assert plan.state.canary_replicas == 0
    assert plan.state.stable_spec.image.endswith(":1.0.0")
    assert plan.analyse is False
    rollback = release.status.rollback
    assert rollback is not None
    assert (rollback.reason, rollback.check, rollback.value, rollback.max) == (
        REASON_ANALYSIS_FAILED,
        "error-rate",
        0.2,
        0.05,
    )
    assert rollback.revision == release.status.canary_revision
    assert release.status.stable_revision == stable
    event = release.note("RolledBack")
    assert event.type == "Warning"
    assert "error-rate = 0.2, above max 0.05" in event.message
    assert "2 failed analysis rounds (failureLimit 2)" in event.message

    # It stays rolled back: stable serves everything until something new happens.
    release.verdict = "Pass"
    release.run_for(120)
    assert release.phase is Phase.ROLLED_BACK
    assert release.state.canary_replicas == 0
    assert release.status.rollback_count == 1


def test_failures_are_cumulative_across_passes() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.tick(analysis="Fail")
    release.run_for(25)  # passes in between do not forgive
    assert release.status.failed_checks == 1
    assert release.weight == 30
    release.tick(analysis="Fail")
    assert release.phase is Phase.ROLLED_BACK


def test_error_limit_counts_only_errors_in_a_row() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.script = ["Error", "Error", "Inconclusive", "Error", "Error", "Pass", "Error"]
    release.tick(7)
    assert release.phase is Phase.PROGRESSING
    assert release.status.error_checks == 1
    assert release.reasons().count("RoundError") == 5
    release.script = ["Error", "Error"]
    release.tick()
    assert release.status.error_checks == 2
    release.tick()
    assert release.phase is Phase.ROLLED_BACK
    rollback = release.status.rollback
    assert rollback is not None
    assert (rollback.reason, rollback.check, rollback.value) == (
        "AnalysisErrors",
        "error-rate",
        None,
    )
    assert "prometheus unreachable" in release.note("RolledBack").message
    assert "3 analysis rounds in a row" in release.note("RolledBack").message


def test_errors_never_promote() -> None:
    release = Release.at_rest(spec=harness_spec(analysis={**harness_spec()["analysis"]}))
    release.update(analysis={"errorLimit": 1000})
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.verdict = "Error"
    release.run_for(120)
    assert (release.phase, release.weight) == (Phase.PROGRESSING, 10)


def test_a_round_counts_only_once() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.tick(analysis="Fail")
    # The same round handed in again (the controller retried the tick): not counted.
    stale_at = release.now - timedelta(seconds=1)
    release.now = stale_at
    release.tick(analysis="Fail")
    assert release.status.failed_checks == 1
    assert release.status.last_analysis is not None
    assert release.status.last_analysis.outcome is CheckOutcome.FAIL
    assert canned_round(stale_at, "Fail").at == release.status.last_analysis.time


def test_progress_deadline_while_waiting_for_the_canary() -> None:
    release = Release.at_rest()  # progressDeadlineSeconds: 60
    release.canary.broken = True
    release.release("2.0.0")
    release.tick()
    started = release.now
    release.run_until(lambda r: r.phase is Phase.ROLLED_BACK, limit=120)
    assert (release.now - started).total_seconds() == 60
    assert release.reasons()[-2:] == ["ProgressDeadlineExceeded", "RolledBack"]
    rollback = release.status.rollback
    assert rollback is not None
    assert rollback.reason == "ProgressDeadlineExceeded"
    assert rollback.message == "the canary was not ready within 60s (0/3 replicas available)"
    assert rollback.check is None
    assert release.state.canary_replicas == 0


def test_progress_deadline_reported_by_the_deployment() -> None:
    release = Release.at_rest()
    release.canary.broken = True
    release.release("2.0.0")
    release.tick(3)
    release.canary.stuck = True
    release.tick()
    assert release.phase is Phase.ROLLED_BACK
    assert release.status.rollback is not None
    assert "reports ProgressDeadlineExceeded" in (release.status.rollback.message or "")


def test_a_canary_that_recovers_in_time_is_not_rolled_back() -> None:
    release = canary_gone_unready()
    release.run_for(40)
    release.canary.broken = False
    release.canary.changed_at = release.now
    release.run_for(30)
    assert release.phase is Phase.PROGRESSING
    assert release.status.not_ready_since is None
    assert release.weight > 20, "steps resume once the canary is ready again"


def test_a_canary_unready_mid_step_rolls_back_at_its_deadline() -> None:
    release = canary_gone_unready()
    start = len(release.history)
    release.run_until(lambda r: r.phase is Phase.ROLLED_BACK, limit=120)
    held = {t.plan.state.canary_weight for t in release.history[start:-1]}
    assert held == {0}, "no traffic while the canary has no available pods"
    assert release.status.rollback is not None
    assert release.status.rollback.reason == "ProgressDeadlineExceeded"


def test_a_canary_without_available_pods_loses_its_traffic_at_once() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 20, limit=60)
    release.run_for(4)
    step = release.status.current_step
    release.canary.lost = True

    plan = release.tick()

    assert release.weight == 0
    assert plan.route_first, "routing moves before anything else"
    assert release.status.phase is Phase.PROGRESSING, "its deadline decides, not this"
    assert "CanaryUnavailable" in [n.reason for n in plan.notes]
    release.run_for(20)
    assert release.weight == 0
    assert release.status.current_step == step, "the step does not move on without pods"

    release.canary.lost = False
    release.canary.changed_at = release.now
    release.run_until(lambda r: r.weight == 20, limit=20)
    back = release.now
    release.run_until(lambda r: r.weight == 30, limit=40)
    assert (release.now - back).total_seconds() >= 10, "the step is held in full again"


def test_failed_rounds_while_paused_still_roll_back() -> None:
    release = paused_by_hand()
    release.script = ["Fail", "Fail"]
    release.tick(2)
    assert release.phase is Phase.ROLLED_BACK
    assert release.status.paused is None


def test_rollback_event_names_check_value_and_threshold_for_a_minimum() -> None:
    record = AnalysisRecord.model_validate(
        {
            "time": datetime(2026, 1, 1),
            "outcome": "Fail",
            "results": [
                {"name": "latency", "outcome": "Pass", "value": 0.2, "max": 1},
                {"name": "success-rate", "outcome": "Fail", "value": 91.5, "min": 99},
                {"name": "cost", "outcome": "Error", "message": "timeout"},
            ],
        }
    )
    check = culprit(record)
    assert check is not None
    assert describe_check(check) == "check success-rate = 91.5, below min 99"
    relative = AnalysisRecord.model_validate(
        {
            "time": datetime(2026, 1, 1),
            "outcome": "Fail",
            "results": [
                {
                    "name": "latency",
                    "outcome": "Fail",
                    "value": 3,
                    "stableValue": 2,
                    "max": 1.25,
                    "relative": True,
                }
            ],
        }
    )
    check = culprit(relative)
    assert check is not None
    assert describe_check(check) == "check latency (canary 3 / stable 2) = 1.5, above max 1.25"


def test_stable_missing_its_deadline_while_promoting_gets_no_traffic() -> None:
    """fluxcd/flagger#1591 and #1898: the deadline holds during promotion too, and traffic
    goes to the (proven, full-size) canary rather than to a stable track stuck mid-rollout."""
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=120)
    release.stable.broken = True
    promoting_at = release.when("Promoting")
    release.run_until(lambda r: r.stage is Stage.STABLE_STALLED, limit=120)
    stalled = release.history[-1]
    assert (stalled.at - promoting_at).total_seconds() == 60
    assert stalled.plan.state.canary_weight == 100
    assert stalled.plan.route_first is False
    assert release.phase is Phase.PROMOTING, "not rolled back: the revision passed"
    warning = release.note("ProgressDeadlineExceeded")
    assert warning.type == "Warning"
    assert "all traffic goes to the canary until stable is ready" in warning.message
    release.run_for(300)
    assert (release.stage, release.weight) == (Stage.STABLE_STALLED, 100)
    assert release.reasons().count("ProgressDeadlineExceeded") == 1

    release.stable.broken = False
    release.run_until(lambda r: r.phase is Phase.READY, limit=30)
    assert release.weights()[-3:] == [50, 100, 0]


def test_stuck_stable_while_promoting_can_be_aborted() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=120)
    release.stable.broken = True
    release.stable.stuck = True
    release.tick()
    assert (release.stage, release.weight) == (Stage.STABLE_STALLED, 100)
    release.annotate(CONTROL_ABORT)
    plan = release.tick()
    assert release.phase is Phase.ROLLED_BACK
    assert plan.route_first is True
    assert plan.state.stable_spec.image.endswith(":1.0.0")


def test_rounds_while_the_canary_starts_do_not_count() -> None:
    """A canary without traffic yet has no data to judge: the progress deadline guards this
    wait, not the analysis (a no-data policy of `fail` would otherwise roll back every slow
    starter)."""
    release = Release.at_rest()
    release.canary.start_seconds = 30
    release.release("2.0.0")
    release.tick()
    release.tick(2, analysis="Fail")
    assert (release.phase, release.stage) == (Phase.PROGRESSING, Stage.WAITING_FOR_CANARY)
    assert release.status.failed_checks == 0
    assert release.status.last_analysis is None


def test_abort_while_the_canary_starts() -> None:
    release = Release.at_rest()
    release.canary.start_seconds = 30
    release.release("2.0.0")
    release.tick(2)
    release.annotate(CONTROL_ABORT)
    plan = release.tick()
    assert release.phase is Phase.ROLLED_BACK
    assert plan.route_first is False, "no traffic had moved"
    assert plan.state.canary_replicas == 0

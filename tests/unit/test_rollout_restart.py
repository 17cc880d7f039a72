"""A new revision during a release restarts it cleanly; the spec going back to the stable
revision cancels it; an operator that was down resumes from the status alone, neither
repeating nor skipping a step; the weight never rises after a rollback decision."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from harness_operator.api.status import Phase, Stage
from harness_operator.rollout import CONTROL_ABORT, CONTROL_PAUSE, CONTROL_PROMOTE
from unit.test_rollout_driver import Release, harness_spec, rollback_invariant


def test_new_revision_mid_step_restarts_the_release() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 30, limit=60)
    release.tick(analysis="Fail")
    first = release.status.canary_revision
    assert release.status.failed_checks == 1

    release.release("3.0.0")
    restart = len(release.history)
    plan = release.tick()
    assert plan.route_first is True, "traffic back on stable before the canary changes"
    assert plan.state.canary_weight == 0
    assert plan.state.canary_spec.image.endswith(":3.0.0")
    assert plan.state.canary_replicas == 3
    assert plan.state.stable_spec.image.endswith(":1.0.0")
    status = release.status
    assert (status.phase, status.stage) == (Phase.PROGRESSING, Stage.WAITING_FOR_CANARY)
    assert status.canary_revision != first
    assert (status.failed_checks, status.error_checks, status.current_step) == (0, 0, None)
    assert status.last_analysis is None
    assert status.release_count == 2
    message = release.note("ReleaseRestarted").message
    assert f"from {first} to {status.canary_revision}" in message

    release.run_until(lambda r: r.phase is Phase.READY, limit=200)
    assert release.status.stable_revision == status.canary_revision
    after = [t.plan.state.canary_weight for t in release.history[restart - 1 :]]
    assert sorted(set(after[:12]), key=after.index) == [30, 0, 10]


def test_new_revision_while_paused_restarts_unpaused() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 20, limit=60)
    release.annotate(CONTROL_PAUSE)
    release.tick()
    release.release("3.0.0")
    release.tick()
    assert (release.phase, release.status.paused) == (Phase.PROGRESSING, None)


def test_new_revision_while_promoting_reverts_stable_and_restarts() -> None:
    release = Release.at_rest()
    release.stable.start_seconds = 30
    release.release("2.0.0")
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=120)
    release.tick(5)
    release.release("3.0.0")
    plan = release.tick()
    assert release.phase is Phase.PROGRESSING
    assert plan.route_first is True
    assert plan.state.stable_spec.image.endswith(":1.0.0"), "back to the proven revision"
    assert plan.state.canary_spec.image.endswith(":3.0.0")


def test_new_revision_while_finalising_keeps_the_promoted_stable() -> None:
    release = Release.at_rest(spec=harness_spec(promotionStepWeight=10))
    release.release("2.0.0")
    release.tick()
    release.run_until(lambda r: r.phase is Phase.FINALISING, limit=120)
    promoted = release.status.stable_revision
    release.release("3.0.0")
    plan = release.tick()
    assert release.phase is Phase.PROGRESSING
    assert release.status.stable_revision == promoted
    assert plan.state.stable_spec.image.endswith(":2.0.0")
    assert plan.state.canary_weight == 0
    assert plan.route_first is True


def test_spec_back_at_the_stable_revision_cancels_the_release() -> None:
    release = Release.at_rest()
    stable = release.status.stable_revision
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 20, limit=60)
    release.release("1.0.0")
    plan = release.tick()
    assert release.phase is Phase.READY
    assert plan.route_first is True
    assert plan.state.canary_replicas == 0
    assert release.status.stable_revision == stable
    assert release.note("ReleaseCancelled").message.endswith("cancelled")


def test_operator_down_mid_step_resumes_without_skipping_steps() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 20, limit=60)
    release.tick(3)
    release.now += timedelta(minutes=10)  # the operator was down; only .status remains
    release.tick()
    assert release.weight == 30, "one step, not six"
    resumed = release.now - timedelta(seconds=1)
    release.run_until(lambda r: r.weight == 40, limit=20)
    assert (release.when("StepAdvanced") - resumed).total_seconds() == 10


def test_operator_down_before_the_step_is_due_repeats_nothing() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 20, limit=60)
    step_started = release.status.step_started_at
    release.now += timedelta(seconds=4)
    release.tick()
    assert (release.weight, release.status.step_started_at) == (20, step_started)
    assert release.reasons().count("StepAdvanced") == 2


def test_a_status_written_by_an_older_operator_is_adopted() -> None:
    """The at-rest operator recorded revisions but no stable spec."""
    release = Release.at_rest()
    release.stored = {
        "phase": "Ready",
        "stableRevision": release.status.stable_revision,
        "canaryRevision": release.status.stable_revision,
        "canaryWeight": 0,
    }
    release.tick()
    assert release.phase is Phase.READY
    assert release.status.stable_spec is not None
    release.release("2.0.0")
    release.tick()
    assert release.phase is Phase.PROGRESSING


@pytest.mark.parametrize("seed", range(20))
def test_weights_stay_in_range_and_never_rise_after_a_rollback(seed: int) -> None:
    """Random rounds, controls, readiness and spec changes; the driver checks the plan
    invariants at every tick."""
    rng = random.Random(seed)
    strategy = rng.choice(["canary", "blueGreen", "abTest"])
    extra: dict[str, object] = {"strategy": strategy}
    if strategy == "abTest":
        extra["match"] = [{"headers": {"x-canary": {"exact": "1"}}}]
    if strategy != "abTest" and rng.random() < 0.5:
        extra["mirror"] = True
    if rng.random() < 0.5:
        extra["promotionStepWeight"] = rng.choice([10, 30, 50])
    release = Release.at_rest(spec=harness_spec(**extra))
    release.invariants.append(rollback_invariant())
    release.release("2.0.0")
    for i in range(400):
        release.verdict = rng.choices(
            ["Pass", "Fail", "Inconclusive", "Error"], weights=[90, 2, 5, 3]
        )[0]
        roll = rng.random()
        if roll < 0.01:
            release.annotate(rng.choice([CONTROL_PROMOTE, CONTROL_PAUSE, CONTROL_ABORT]))
        elif roll < 0.015:
            release.release(f"3.0.{i}")
        elif roll < 0.02:
            release.canary.broken = not release.canary.broken
            release.canary.changed_at = release.now
        release.tick()
        assert 0 <= release.weight <= 100

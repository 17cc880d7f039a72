"""Manual controls through annotations: promote (one step or all), abort, retry, pause and
resume; each acted on once, even when redelivered, and usable again once removed."""

from __future__ import annotations

import pytest

from harness_operator.api.status import Phase, Stage
from harness_operator.rollout import (
    CONTROL_ABORT,
    CONTROL_KEYS,
    CONTROL_PAUSE,
    CONTROL_PROMOTE,
    CONTROL_RESUME,
    CONTROL_RETRY,
    REASON_ABORTED,
)
from harness_operator.rollout.controls import read_controls
from unit.test_rollout_driver import Release, harness_spec


def in_step(weight: int = 20) -> Release:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == weight, limit=60)
    return release


def rolled_back() -> Release:
    release = in_step()
    release.annotate(CONTROL_ABORT)
    release.tick()
    assert release.phase is Phase.ROLLED_BACK
    return release


def test_control_keys() -> None:
    assert CONTROL_KEYS == (
        "harness.dev/abort",
        "harness.dev/retry",
        "harness.dev/pause",
        "harness.dev/resume",
        "harness.dev/promote",
        "harness.dev/lift-budget",
        "harness.dev/run-now",
    )


def test_promote_skips_the_current_steps_wait() -> None:
    release = in_step(20)
    release.tick()
    release.annotate(CONTROL_PROMOTE, "now")
    plan = release.tick()
    assert release.weight == 30
    assert plan.consumed == (CONTROL_PROMOTE,)
    assert release.note("ManualPromotion").message == (
        "harness.dev/promote='now': skipping this step"
    )
    # Only one step: the next one waits its full interval again.
    release.run_for(9)
    assert release.weight == 30
    release.tick()
    assert release.weight == 40


def test_promote_skips_a_failing_step_but_not_the_rollback() -> None:
    release = in_step(20)
    release.verdict = "Fail"
    release.tick()
    release.annotate(CONTROL_PROMOTE, "1")
    release.tick()
    assert release.phase is Phase.ROLLED_BACK, "the second failure wins over the skip"


def test_promote_full_skips_every_remaining_step_and_the_analysis() -> None:
    release = in_step(20)
    release.verdict = "Inconclusive"
    release.annotate(CONTROL_PROMOTE, "Full")
    plan = release.tick()
    assert release.phase is Phase.PROMOTING
    assert plan.state.stable_spec.image.endswith(":2.0.0")
    assert plan.state.canary_weight == 20
    assert plan.analyse is False
    release.run_until(lambda r: r.phase is Phase.READY, limit=30)


def test_promote_full_while_the_canary_starts() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.annotate(CONTROL_PROMOTE, "full")  # in the same apply as the new image
    release.tick()
    assert release.phase is Phase.PROMOTING
    assert release.reasons() == ["ReleaseStarted", "ManualPromotion", "Promoting"]
    assert release.weight == 0
    release.run_until(lambda r: r.phase is Phase.READY, limit=30)
    assert release.history[-1].plan.status.stable_spec is not None


def test_promote_while_the_canary_is_not_ready_is_ignored() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.tick()
    release.annotate(CONTROL_PROMOTE, "yes")
    release.tick()
    assert release.stage is Stage.WAITING_FOR_CANARY
    assert "the canary is not ready" in release.note("ControlIgnored").message
    assert CONTROL_PROMOTE not in release.controls, "consumed anyway"


def test_abort_rolls_back_at_once() -> None:
    release = in_step(30)
    release.annotate(CONTROL_ABORT, "p99 looks off")
    plan = release.tick()
    assert release.phase is Phase.ROLLED_BACK
    assert plan.route_first is True
    assert plan.state.canary_replicas == 0
    rollback = release.status.rollback
    assert rollback is not None
    assert (rollback.reason, rollback.message) == (
        REASON_ABORTED,
        "aborted by harness.dev/abort (p99 looks off)",
    )
    assert release.note("RolledBack").type == "Warning"


def test_abort_during_promotion_puts_stable_back() -> None:
    release = in_step(50)
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=20)
    release.annotate(CONTROL_ABORT)
    plan = release.tick()
    assert release.phase is Phase.ROLLED_BACK
    assert plan.state.stable_spec.image.endswith(":1.0.0")
    assert plan.state.canary_weight == 0


def test_abort_after_promotion_is_ignored() -> None:
    release = Release.at_rest(spec=harness_spec(promotionStepWeight=10))
    release.release("2.0.0")
    release.tick()
    release.run_until(lambda r: r.phase is Phase.FINALISING, limit=120)
    release.annotate(CONTROL_ABORT)
    release.tick()
    assert release.phase is Phase.FINALISING
    assert "nothing to abort in phase Finalising" in release.note("ControlIgnored").message


def test_retry_releases_the_rolled_back_revision_again() -> None:
    release = rolled_back()
    failed = release.status.canary_revision
    release.run_for(30)
    assert release.phase is Phase.ROLLED_BACK
    release.annotate(CONTROL_RETRY, "1")
    plan = release.tick()
    assert release.phase is Phase.PROGRESSING
    assert release.status.canary_revision == failed
    assert release.status.failed_checks == 0
    assert release.status.release_count == 2
    assert plan.state.canary_replicas == 3
    assert "again (retry)" in release.note("ReleaseStarted").message
    release.run_until(lambda r: r.phase is Phase.READY, limit=120)


def test_retry_outside_a_rollback_is_ignored() -> None:
    release = in_step()
    release.annotate(CONTROL_RETRY)
    release.tick()
    assert release.phase is Phase.PROGRESSING
    assert "nothing to retry in phase Progressing" in release.note("ControlIgnored").message


def test_rolled_back_release_stays_until_a_new_revision() -> None:
    release = rolled_back()
    release.run_for(60)
    assert release.phase is Phase.ROLLED_BACK
    release.release("3.0.0")
    release.tick()
    assert release.phase is Phase.PROGRESSING
    assert release.note("ReleaseStarted").message.startswith("releasing revision")


def test_going_back_to_the_stable_spec_after_a_rollback_is_at_rest() -> None:
    release = rolled_back()
    release.release("1.0.0")
    release.tick()
    assert release.phase is Phase.READY
    assert release.state.canary_spec == release.state.stable_spec


def test_pause_holds_the_weight_and_resume_restarts_the_step() -> None:
    release = in_step(20)
    release.annotate(CONTROL_PAUSE)
    release.tick()
    assert (release.phase, release.weight, release.status.paused) == (Phase.PAUSED, 20, True)
    assert release.note("Paused").message.startswith("release of")
    release.run_for(120)
    assert (release.phase, release.weight) == (Phase.PAUSED, 20)
    assert release.history[-1].plan.analyse is True, "analysis keeps running"
    release.annotate(CONTROL_RESUME)
    release.tick()
    resumed_at = release.when("Resumed")
    assert release.phase is Phase.PROGRESSING
    release.run_until(lambda r: r.weight == 30, limit=20)
    assert (release.when("StepAdvanced") - resumed_at).total_seconds() == 10


def test_promote_while_paused_steps_through_one_step_at_a_time() -> None:
    release = in_step(20)
    release.annotate(CONTROL_PAUSE)
    release.tick()
    release.annotate(CONTROL_PROMOTE, "next")
    release.tick()
    assert (release.phase, release.weight) == (Phase.PAUSED, 30)
    release.run_for(60)
    assert release.weight == 30


def test_pause_while_the_canary_starts_holds_at_zero() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.annotate(CONTROL_PAUSE)
    release.tick()
    release.run_for(30)
    assert (release.phase, release.stage, release.weight) == (
        Phase.PAUSED,
        Stage.WAITING_FOR_CANARY,
        0,
    )
    release.annotate(CONTROL_RESUME)
    release.tick(2)
    assert release.weight == 10


def test_pause_and_resume_together_resume() -> None:
    release = in_step(20)
    release.annotate(CONTROL_PAUSE)
    release.tick()
    release.annotate(CONTROL_PAUSE, "again")
    release.annotate(CONTROL_RESUME)
    release.tick()
    assert release.phase is Phase.PROGRESSING
    assert "came with it" in release.note("ControlIgnored").message


def test_controls_at_rest_are_consumed_and_ignored() -> None:
    release = Release.at_rest()
    release.annotate(CONTROL_PAUSE)
    plan = release.tick()
    assert release.phase is Phase.READY
    assert plan.consumed == (CONTROL_PAUSE,)
    assert release.note("ControlIgnored").message == (
        "harness.dev/pause='true' ignored: nothing to pause in phase Ready"
    )


def test_redelivered_annotation_is_not_acted_on_twice() -> None:
    """The operator saved the status but died before removing the annotation."""
    release = in_step(20)
    release.remove_consumed = False
    release.annotate(CONTROL_PROMOTE, "skip-1")
    first = release.tick()
    assert release.weight == 30
    assert release.status.consumed_controls == {CONTROL_PROMOTE: "skip-1"}
    again = release.tick()
    assert release.weight == 30, "not promoted twice"
    assert first.consumed == again.consumed == (CONTROL_PROMOTE,), "still asks for removal"
    assert release.reasons().count("ManualPromotion") == 1
    # The annotation is removed at last: its record goes, the same value works again.
    release.remove_consumed = True
    release.tick()
    release.controls.clear()
    release.tick()
    assert release.status.consumed_controls is None
    release.annotate(CONTROL_PROMOTE, "skip-1")
    release.tick()
    assert release.weight == 40


def test_a_new_value_of_a_recorded_annotation_acts_again() -> None:
    release = in_step(20)
    release.remove_consumed = False
    release.annotate(CONTROL_PROMOTE, "a")
    release.tick()
    release.annotate(CONTROL_PROMOTE, "b")
    release.tick()
    assert release.weight == 40
    assert release.status.consumed_controls == {CONTROL_PROMOTE: "b"}


@pytest.mark.parametrize(
    ("present", "recorded", "pending", "record"),
    [
        ({}, None, {}, {}),
        ({CONTROL_ABORT: "x"}, None, {CONTROL_ABORT: "x"}, {CONTROL_ABORT: "x"}),
        ({CONTROL_ABORT: "x"}, {CONTROL_ABORT: "x"}, {}, {CONTROL_ABORT: "x"}),
        ({CONTROL_ABORT: "y"}, {CONTROL_ABORT: "x"}, {CONTROL_ABORT: "y"}, {CONTROL_ABORT: "y"}),
        ({}, {CONTROL_ABORT: "x"}, {}, {}),
        ({"harness.dev/other": "1", "team": "a"}, None, {}, {}),
    ],
)
def test_read_controls(
    present: dict[str, str],
    recorded: dict[str, str] | None,
    pending: dict[str, str],
    record: dict[str, str],
) -> None:
    controls = read_controls(present, recorded)
    assert dict(controls.pending) == pending
    assert dict(controls.record) == record
    assert controls.consumed == tuple(sorted(record))


def test_promote_full_with_the_plugins_nonce() -> None:
    release = in_step(20)
    release.annotate(CONTROL_PROMOTE, "full@1795300000123456789")
    release.tick()
    assert release.phase is Phase.PROMOTING


def test_promote_step_with_the_plugins_nonce_skips_one_step_only() -> None:
    release = in_step(20)
    release.annotate(CONTROL_PROMOTE, "step@1795300000123456789")
    plan = release.tick()
    assert release.phase is Phase.PROGRESSING
    assert plan.state.canary_weight > 20

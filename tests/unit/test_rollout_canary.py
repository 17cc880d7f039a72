"""Canary releases that go well: every step, in order, on schedule; mirroring; gradual
promotion; releases without analysis; what holds a step (inconclusive or missing rounds)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.status import HarnessDeploymentStatus, Phase, Stage
from harness_operator.render import revision
from harness_operator.rollout import Inputs, Plan, advance
from unit.test_rollout_driver import Release, harness_spec


def test_good_canary_goes_through_every_step_and_is_promoted() -> None:
    release = Release.at_rest()
    stable_before = release.status.stable_revision
    release.release("2.0.0")

    plan = release.tick()
    assert (release.phase, release.stage, release.weight) == (
        Phase.PROGRESSING,
        Stage.WAITING_FOR_CANARY,
        0,
    )
    assert plan.state.canary_replicas == 3, "the canary is sized like stable"
    assert plan.state.canary_spec.image.endswith(":2.0.0")
    assert plan.state.stable_spec.image.endswith(":1.0.0")
    assert plan.analyse is False, "no analysis while the canary starts"
    new = release.status.canary_revision
    assert new != stable_before

    seen = []
    release.run_until(lambda r: r.phase is Phase.PROMOTING)
    for tick in release.history:
        status = tick.plan.status
        if status.stage is Stage.ANALYSING and (not seen or seen[-1] != status.canary_weight):
            seen.append(status.canary_weight)
    assert seen == [10, 20, 30, 40, 50]
    promoting = release.history[-1].plan
    assert promoting.state.stable_spec.image.endswith(":2.0.0"), "stable rolls out the canary"
    assert promoting.state.canary_weight == 50, "traffic stays until stable is ready"
    assert release.status.stable_revision == stable_before

    release.run_until(lambda r: r.phase is Phase.FINALISING, limit=10)
    finalising = release.history[-1].plan
    assert finalising.route_first is True
    assert finalising.state.canary_weight == 0
    assert finalising.state.canary_replicas == 3, "the canary drains before it scales down"
    assert release.status.stable_revision == new

    release.tick()
    assert release.phase is Phase.READY
    assert release.state.canary_replicas == 0
    status = release.status
    assert (status.stable_revision, status.canary_revision) == (new, new)
    assert status.failed_checks == 0
    assert status.stage is None
    assert status.current_step is None
    assert status.stable_spec is not None
    assert status.stable_spec["image"].endswith(":2.0.0")
    assert release.reasons() == [
        "ReleaseStarted",
        *["StepAdvanced"] * 5,
        "Promoting",
        "Finalising",
        "Promoted",
    ]
    assert release.note("StepAdvanced").message == "canary weight 50% (step 5/5)"


def test_each_step_lasts_exactly_the_interval() -> None:
    release = Release.at_rest(spec=harness_spec(interval="30s", stepWeight=25, maxWeight=75))
    release.release("2.0.0")
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=300)
    steps = [t.at for t in release.history for n in t.plan.notes if n.reason == "StepAdvanced"]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(steps)] == [30, 30]
    assert release.when("Promoting") - steps[0] == timedelta(seconds=90)


def test_step_pauses_add_to_the_interval() -> None:
    steps = [{"weight": 5}, {"weight": 50, "pause": "20s"}, {"weight": 80}]
    release = Release.at_rest(spec=harness_spec(steps=steps))
    release.release("2.0.0")
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=300)
    times = [t.at for t in release.history for n in t.plan.notes if n.reason == "StepAdvanced"]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [10, 30]
    assert (release.when("Promoting") - times[-1]).total_seconds() == 10


def test_inconclusive_rounds_hold_the_step_and_never_promote() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.verdict = "Inconclusive"
    release.run_for(300)
    assert (release.phase, release.weight, release.status.current_step) == (
        Phase.PROGRESSING,
        10,
        0,
    )
    assert release.status.failed_checks == 0
    assert release.status.error_checks == 0
    release.verdict = "Pass"
    release.tick()
    assert release.weight == 20, "the first passing round after the hold moves on"


def test_a_step_moves_on_only_after_a_passing_round_since_it_started() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.script = ["Pass"] * 8 + ["Fail", "Inconclusive"]  # the last two end the step
    release.run_for(10)
    assert release.weight == 10
    assert release.status.failed_checks == 1
    release.tick(analysis="Inconclusive")
    assert release.weight == 10
    release.tick(analysis="Pass")
    assert release.weight == 20


def test_without_analysis_steps_advance_on_time_alone() -> None:
    release = Release.at_rest(spec=harness_spec(analysis=None, stepWeight=50, maxWeight=100))
    release.release("2.0.0")
    release.tick()
    assert release.note("ReleaseStarted").message.endswith(
        "no analysis: steps advance on time alone"
    )
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=60)
    assert release.weights() == [0, 50, 100]
    assert not any(t.plan.analyse for t in release.history)
    assert release.when("Promoting") - release.when("StepAdvanced") == timedelta(seconds=10)
    # Rounds handed in anyway change nothing.
    assert release.status.last_analysis is None


def test_mirroring_comes_first_for_one_interval_with_no_weight() -> None:
    release = Release.at_rest(spec=harness_spec(mirror=True, mirrorPercentage=40))
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.MIRRORING, limit=10)
    mirroring = release.history[-1].plan
    assert (mirroring.state.mirror_percent, mirroring.state.canary_weight) == (40, 0)
    assert mirroring.analyse is True
    assert release.note("Mirroring").message == "mirroring 40% of requests to the canary for 10s"
    mirrored_at = release.when("Mirroring")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=20)
    step = release.history[-1].plan
    assert release.when("StepAdvanced") - mirrored_at == timedelta(seconds=10)
    assert (step.state.mirror_percent, step.state.canary_weight) == (0, 10)
    assert step.route_first is True, "mirroring stops before (or as) weight moves"


def test_mirror_defaults_to_all_requests() -> None:
    release = Release.at_rest(spec=harness_spec(mirror=True))
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.MIRRORING, limit=10)
    assert release.state.mirror_percent == 100


def test_gradual_promotion_steps_traffic_back_each_interval() -> None:
    spec = harness_spec(steps=[{"weight": 60}], promotionStepWeight=25)
    release = Release.at_rest(spec=spec)
    release.release("2.0.0")
    release.run_until(lambda r: r.phase is Phase.FINALISING, limit=60)
    finalising_at = release.when("Finalising")
    release.run_until(lambda r: r.phase is Phase.READY, limit=60)
    shifts = [
        (t.at - finalising_at).total_seconds()
        for t in release.history
        if t.plan.status.phase is Phase.FINALISING and t.plan.route_first
    ]
    assert shifts == [0, 10, 20]
    assert release.weights()[-4:] == [60, 35, 10, 0]
    assert release.state.canary_replicas == 0


def test_gradual_promotion_waits_for_a_ready_stable() -> None:
    spec = harness_spec(steps=[{"weight": 60}], promotionStepWeight=20)
    release = Release.at_rest(spec=spec)
    release.release("2.0.0")
    release.run_until(lambda r: r.phase is Phase.FINALISING, limit=60)
    assert release.weight == 40
    release.stable.broken = True
    release.stable.changed_at = release.now
    release.run_for(60)
    assert (release.phase, release.weight) == (Phase.FINALISING, 40)
    release.stable.broken = False
    release.run_until(lambda r: r.phase is Phase.READY, limit=60)


def test_config_change_alone_is_released_as_a_canary() -> None:
    release = Release.at_rest()
    before = release.status.stable_revision
    release.config_hashes = {"ConfigMap/prompts": "feedbeef"}
    plan = release.tick()
    assert release.phase is Phase.PROGRESSING
    assert release.status.canary_revision != before
    assert plan.state.config_hashes == {"ConfigMap/prompts": "feedbeef"}
    assert plan.state.stable_hashes == {}, "stable keeps the old config until promotion"
    release.run_until(lambda r: r.phase is Phase.READY, limit=200)
    assert release.status.stable_config_hashes == {"ConfigMap/prompts": "feedbeef"}
    assert release.state.stable_hashes == {"ConfigMap/prompts": "feedbeef"}


def test_spec_changes_outside_the_pod_template_start_no_release() -> None:
    release = Release.at_rest()
    release.update(replicas=5, rollout={"interval": "1m"})
    release.tick()
    assert release.phase is Phase.READY
    assert release.status.stable_spec is not None
    assert release.status.stable_spec["replicas"] == 5, "the stable record follows the spec"


def test_at_rest_with_a_stable_track_not_fully_available_is_degraded() -> None:
    release = Release.at_rest()
    release.stable.broken = True
    release.tick()
    assert release.phase is Phase.DEGRADED
    release.stable.broken = False
    release.tick()
    assert release.phase is Phase.READY


def test_autoscaled_canary_starts_at_the_size_of_stable() -> None:
    spec = harness_spec()
    spec["autoscaling"] = {"minReplicas": 2, "maxReplicas": 10}
    release = Release.at_rest(spec=spec)
    release.stable.desired = 7  # the stable HPA scaled it up
    release.release("2.0.0")
    assert release.tick().state.canary_replicas == 7


def test_changing_the_steps_mid_release_applies_at_once() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.weight == 30, limit=60)
    release.update(rollout={"steps": [{"weight": 5}, {"weight": 15}]})
    plan = release.tick()
    assert release.weight == 15, "step 3 of 2 is the last step"
    assert plan.route_first is True
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=30)


def test_route_first_exactly_when_traffic_moves_toward_stable() -> None:
    """Checked at every tick by the driver; here once more over a whole release with
    mirroring, steps and gradual promotion."""
    release = Release.at_rest(spec=harness_spec(mirror=True, promotionStepWeight=30))
    release.release("2.0.0")
    release.tick()
    release.run_until(lambda r: r.phase is Phase.READY, limit=300)
    firsts = [t.plan.state.canary_weight for t in release.history if t.plan.route_first]
    assert firsts == [10, 20, 0], "mirror off as the first step starts, then 50 -> 20 -> 0"


def test_same_inputs_give_the_same_plan() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_for(15)
    last = release.history[-1]
    spec = HarnessDeploymentSpec.model_validate(release.spec)
    inputs = Inputs(
        now=release.now,
        spec=spec,
        revision=revision(spec, {}),
        config_hashes={},
        status=HarnessDeploymentStatus.model_validate(release.stored),
        stable=release.stable.observe(release.now),
        canary=release.canary.observe(release.now),
    )
    first: Plan = advance(inputs)
    assert advance(inputs) == first
    assert last.plan.status.step_started_at is not None


@pytest.mark.parametrize("seconds", [1, 2, 3])
def test_tick_rate_does_not_change_the_schedule(seconds: int) -> None:
    release = Release.at_rest(step=seconds, spec=harness_spec(interval="12s"))
    release.release("2.0.0")
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=300)
    times = [t.at for t in release.history for n in t.plan.notes if n.reason == "StepAdvanced"]
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
    assert gaps == {12}

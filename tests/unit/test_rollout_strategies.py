"""Blue/green and A/B releases: analysed for `iterations` intervals, then promoted (blue/green
switches all traffic to the canary first)."""

from __future__ import annotations

from harness_operator.api.status import Phase, Stage
from harness_operator.rollout import CONTROL_PROMOTE
from unit.test_rollout_driver import Release, harness_spec

MATCH = [{"headers": {"x-canary": {"exact": "1"}}}, {"cookie": "canary=always"}]


def test_blue_green_tests_without_traffic_then_switches_everything() -> None:
    release = Release.at_rest(spec=harness_spec(strategy="blueGreen"))
    release.release("2.0.0")
    release.tick()
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    testing = release.history[-1].plan
    assert (testing.state.canary_weight, testing.state.mirror_percent) == (0, 0)
    assert testing.state.canary_replicas == 3
    assert testing.analyse is True
    assert release.note("Testing").message.startswith("blue/green test")
    started = release.when("Testing")

    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=60)
    assert (release.when("Promoting") - started).total_seconds() == 30, "3 iterations of 10s"
    assert release.reasons().count("IterationCompleted") == 3
    switch = release.history[-1].plan
    assert switch.state.canary_weight == 100
    assert switch.route_first is False, "traffic moves toward the canary"
    assert switch.state.stable_spec.image.endswith(":2.0.0")
    assert "all traffic switched to the canary" in release.note("Promoting").message

    release.run_until(lambda r: r.phase is Phase.FINALISING, limit=10)
    assert release.history[-1].plan.route_first is True
    assert release.weight == 0
    release.tick()
    assert release.phase is Phase.READY
    assert release.weights() == [0, 100, 0]


def test_blue_green_iterations_need_a_passing_round_each() -> None:
    release = Release.at_rest(spec=harness_spec(strategy="blueGreen", iterations=2))
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.verdict = "Inconclusive"
    release.run_for(60)
    assert release.status.iterations == 0
    release.verdict = "Pass"
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=30)


def test_blue_green_with_mirroring_mirrors_for_the_whole_test() -> None:
    spec = harness_spec(strategy="blueGreen", mirror=True, mirrorPercentage=50)
    release = Release.at_rest(spec=spec)
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.run_for(25)
    assert release.state.mirror_percent == 50
    assert release.weight == 0
    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=30)
    assert (release.state.mirror_percent, release.weight) == (0, 100)
    assert release.history[-1].plan.route_first is True, "mirroring stops"


def test_promote_ends_a_blue_green_test() -> None:
    release = Release.at_rest(spec=harness_spec(strategy="blueGreen", iterations=10))
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.tick()
    release.annotate(CONTROL_PROMOTE)
    release.tick()
    assert (release.phase, release.weight) == (Phase.PROMOTING, 100)


def test_ab_test_sends_matching_requests_to_the_canary() -> None:
    release = Release.at_rest(spec=harness_spec(strategy="abTest", iterations=4, match=MATCH))
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    testing = release.history[-1].plan
    assert testing.state.canary_weight == 0
    assert testing.state.canary_match == (
        {"headers": {"x-canary": {"exact": "1"}}},
        {"headers": {"cookie": {"regex": r"^(.*?;\s*)?(canary\=always)(;.*)?$"}}},
    )
    assert release.status.canary_match is True
    assert "A/B test" in release.note("Testing").message
    started = release.when("Testing")

    release.run_until(lambda r: r.phase is Phase.PROMOTING, limit=60)
    assert (release.when("Promoting") - started).total_seconds() == 40
    promoting = release.history[-1].plan
    assert promoting.state.canary_match, "matching requests stay on the canary meanwhile"
    assert promoting.state.canary_weight == 0

    release.run_until(lambda r: r.phase is Phase.FINALISING, limit=10)
    finalising = release.history[-1].plan
    assert finalising.state.canary_match == ()
    assert finalising.route_first is True
    release.tick()
    assert release.phase is Phase.READY


def test_ab_test_failure_rolls_back_and_drops_the_match() -> None:
    release = Release.at_rest(spec=harness_spec(strategy="abTest", match=MATCH))
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    release.script = ["Fail", "Fail"]
    release.tick()
    plan = release.tick()
    assert release.phase is Phase.ROLLED_BACK
    assert plan.state.canary_match == ()
    assert plan.route_first is True


def test_strategy_change_mid_release_applies_at_once() -> None:
    release = Release.at_rest(spec=harness_spec(strategy="blueGreen"))
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    rollout = dict(release.spec["rollout"])
    rollout["strategy"] = "canary"
    release.spec = {**release.spec, "rollout": rollout}
    release.tick()
    assert (release.weight, release.status.current_step) == (10, 0)
    assert release.reasons()[-1] == "StepAdvanced"

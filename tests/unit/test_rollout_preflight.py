"""The release engine and the credential preflight: a revision whose credential has not
passed gets no canary pods and no traffic, whatever else happens; a first deploy is not
Ready; a pass (or a check that does not apply) lets the release go on."""

from __future__ import annotations

from harness_operator.api.status import Phase, Stage
from harness_operator.preflight import CHECKING, PreflightOutcome, Verdict, unverified
from harness_operator.rollout import CONTROL_ABORT, CONTROL_PROMOTE, PROMOTE_FULL
from unit.test_rollout_driver import Release, harness_spec

REFUSED = Verdict(PreflightOutcome.FAILED, "InvalidCredentials", "401 authentication_error")
BUSY = Verdict(PreflightOutcome.INCONCLUSIVE, "Overloaded", "529 overloaded_error")
PASSED = Verdict(PreflightOutcome.PASSED, "Verified", "models.retrieve accepted")


def held(release: Release, seconds: float = 120) -> None:
    release.run_for(seconds)
    for tick in release.history:
        assert tick.plan.state.canary_weight == 0
        assert tick.plan.state.canary_replicas == 0, "no canary pods before the check passed"
        assert tick.plan.state.mirror_percent == 0
    assert (release.phase, release.stage) == (Phase.PROGRESSING, Stage.PREFLIGHT)


def test_a_refused_credential_holds_the_release_without_pods_or_traffic() -> None:
    release = Release.at_rest()
    release.credentials = REFUSED
    release.release("2.0.0")
    held(release, 200)  # well past the 60 s progress deadline: held, not rolled back
    assert "InvalidCredentials" in (release.status.message or "")
    assert release.status.stable_revision == release.history[0].plan.status.stable_revision


def test_a_pass_releases_it() -> None:
    release = Release.at_rest()
    release.credentials = REFUSED
    release.release("2.0.0")
    held(release, 10)
    release.credentials = PASSED
    release.run_until(lambda r: r.weight > 0, limit=30)
    release.run_until(lambda r: r.phase is Phase.READY, limit=300)
    assert release.status.stable_revision == release.status.canary_revision


def test_inconclusive_and_checking_hold_too() -> None:
    for verdict in (BUSY, CHECKING):
        release = Release.at_rest()
        release.credentials = verdict
        release.release("2.0.0")
        held(release, 30)


def test_unverifiable_credentials_do_not_hold() -> None:
    release = Release.at_rest()
    release.credentials = unverified("NoFreeCheck", "bedrock has no free check")
    release.release("2.0.0")
    release.run_until(lambda r: r.weight > 0, limit=30)


def test_promote_full_does_not_skip_the_check() -> None:
    release = Release.at_rest()
    release.credentials = REFUSED
    release.release("2.0.0")
    release.tick()
    release.annotate(CONTROL_PROMOTE, PROMOTE_FULL)
    held(release, 10)
    assert "has not passed preflight" in release.note("ControlIgnored").message


def test_abort_while_held_rolls_back() -> None:
    release = Release.at_rest()
    release.credentials = REFUSED
    release.release("2.0.0")
    release.tick()
    release.annotate(CONTROL_ABORT)
    release.tick()
    assert release.phase is Phase.ROLLED_BACK


def test_first_deploy_is_not_ready_until_the_check_passes() -> None:
    release = Release(spec=harness_spec())
    release.credentials = REFUSED
    release.run_for(30)
    assert release.phase is Phase.INITIALIZING
    assert "has not passed the preflight" in (release.status.message or "")
    release.credentials = PASSED
    release.run_until(lambda r: r.phase is Phase.READY, limit=10)


def test_the_model_of_each_track_is_recorded() -> None:
    model = {
        "provider": "anthropic",
        "name": "claude-sonnet-4-6",
        "credentials": {"secretRef": {"name": "k", "key": "api-key"}},
    }
    release = Release.at_rest(spec={**harness_spec(), "model": model})
    assert release.status.stable_model == "anthropic/claude-sonnet-4-6"
    assert release.status.canary_model == "anthropic/claude-sonnet-4-6"
    release.update(model={**model, "name": "claude-opus-4-6"})
    release.run_until(lambda r: r.weight > 0, limit=30)
    assert release.status.stable_model == "anthropic/claude-sonnet-4-6"
    assert release.status.canary_model == "anthropic/claude-opus-4-6"
    release.run_until(lambda r: r.phase is Phase.READY, limit=300)
    assert release.status.stable_model == "anthropic/claude-opus-4-6"

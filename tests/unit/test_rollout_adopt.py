"""An upgraded operator that computes revision ids differently keeps the ids the pods
already carry (as aliases), so nothing is released or restarted, and never mistakes a new
revision for an old one."""

from __future__ import annotations

from datetime import UTC, datetime

from harness_operator.api.status import HarnessDeploymentStatus, Phase, RollbackRecord, Stage
from harness_operator.rollout.adopt import adopt_revisions, prune_aliases
from unit.test_rollout_driver import Release

AT = datetime(2026, 11, 30, tzinfo=UTC)


def at_rest(revision: str = "old-stable") -> HarnessDeploymentStatus:
    return HarnessDeploymentStatus(
        phase=Phase.READY, stable_revision=revision, canary_revision=revision, release_count=3
    )


def test_at_rest_the_new_id_is_an_alias_of_the_one_in_use() -> None:
    adopted = adopt_revisions(
        at_rest(), revision="new-stable", stable_revision="new-stable", canary_runs_spec=False
    )
    assert adopted.status.revision_aliases == {"new-stable": "old-stable"}
    assert adopted.resolve("new-stable") == "old-stable"
    assert adopted.resolve("edited") == "edited"
    assert (adopted.status.stable_revision, adopted.status.canary_revision) == (
        "old-stable",
        "old-stable",
    )
    (note,) = adopted.notes
    assert note.reason == "RevisionAdopted"
    assert "new-stable of revision old-stable" in note.message


def test_nothing_to_adopt_is_no_change() -> None:
    status = at_rest("same")
    adopted = adopt_revisions(
        status, revision="same", stable_revision="same", canary_runs_spec=True
    )
    assert adopted.status is status
    assert adopted.notes == ()


def test_adopting_twice_says_it_once() -> None:
    first = adopt_revisions(
        at_rest(), revision="new", stable_revision="new", canary_runs_spec=False
    )
    again = adopt_revisions(
        first.status, revision="new", stable_revision="new", canary_runs_spec=False
    )
    assert again.notes == ()
    assert again.status.revision_aliases == {"new": "old-stable"}


def rolled_back() -> HarnessDeploymentStatus:
    return HarnessDeploymentStatus(
        phase=Phase.ROLLED_BACK,
        stable_revision="old-stable",
        canary_revision="old-bad",
        rollback=RollbackRecord(reason="Aborted", revision="old-bad", at=AT),
    )


def test_the_rolled_back_revision_keeps_its_id_when_the_canary_runs_the_spec() -> None:
    adopted = adopt_revisions(
        rolled_back(), revision="new-bad", stable_revision="new-stable", canary_runs_spec=True
    )
    assert adopted.resolve("new-bad") == "old-bad", "so it is not released again"
    assert adopted.resolve("new-stable") == "old-stable"


def test_a_spec_changed_since_the_rollback_is_a_new_revision() -> None:
    adopted = adopt_revisions(
        rolled_back(), revision="fixed", stable_revision="new-stable", canary_runs_spec=False
    )
    assert adopted.resolve("fixed") == "fixed"


def test_a_release_in_flight_keeps_its_step() -> None:
    status = HarnessDeploymentStatus(
        phase=Phase.PROGRESSING,
        stage=Stage.ANALYSING,
        current_step=2,
        canary_weight=50,
        stable_revision="old-stable",
        canary_revision="old-canary",
    )
    adopted = adopt_revisions(
        status, revision="new-canary", stable_revision="new-stable", canary_runs_spec=True
    )
    assert adopted.resolve("new-canary") == "old-canary"
    assert (adopted.status.current_step, adopted.status.canary_weight) == (2, 50)


def test_the_canary_is_never_aliased_at_rest() -> None:
    """At rest the canary id is stable's; a canary that 'runs the spec' proves nothing."""
    adopted = adopt_revisions(
        at_rest("s1"), revision="x", stable_revision="s1", canary_runs_spec=True
    )
    assert adopted.resolve("x") == "x"


def test_aliases_are_dropped_once_their_id_is_no_longer_in_use() -> None:
    status = at_rest("old").model_copy(
        update={"revision_aliases": {"new": "old", "gone": "long-ago"}}
    )
    assert prune_aliases(status) == {"new": "old"}
    assert (
        prune_aliases(at_rest("other").model_copy(update={"revision_aliases": {"a": "b"}})) is None
    )


def test_the_next_real_release_retires_the_alias() -> None:
    release = Release.at_rest()
    stable = release.status.stable_revision
    assert stable is not None
    release.stored["revisionAliases"] = {"computed-by-0.2": stable}
    release.release("2.0.0")
    release.tick()
    assert release.status.revision_aliases == {"computed-by-0.2": stable}, "still in use"
    release.run_until(lambda r: r.phase is Phase.READY, limit=300)
    assert release.status.stable_revision != stable
    assert release.status.revision_aliases is None

"""An upgraded operator that names revisions differently adopts the new ids for the same
pods, and never mistakes a renamed revision for a new one."""

from __future__ import annotations

from datetime import UTC, datetime

from harness_operator.api.status import HarnessDeploymentStatus, Phase, RollbackRecord, Stage
from harness_operator.rollout.adopt import adopt_revisions

AT = datetime(2026, 11, 30, tzinfo=UTC)


def at_rest(revision: str = "old-stable") -> HarnessDeploymentStatus:
    return HarnessDeploymentStatus(
        phase=Phase.READY, stable_revision=revision, canary_revision=revision, release_count=3
    )


def test_at_rest_both_ids_follow_the_recorded_stable_spec() -> None:
    adopted = adopt_revisions(
        at_rest(), revision="new-stable", stable_revision="new-stable", canary_runs_spec=False
    )
    assert adopted.status.stable_revision == "new-stable"
    assert adopted.status.canary_revision == "new-stable"
    assert adopted.status.release_count == 3
    (note,) = adopted.notes
    assert note.reason == "RevisionAdopted"
    assert "old-stable is now new-stable" in note.message


def test_nothing_to_adopt_is_no_change() -> None:
    status = at_rest("same")
    adopted = adopt_revisions(
        status, revision="same", stable_revision="same", canary_runs_spec=True
    )
    assert adopted.status is status
    assert adopted.notes == ()


def test_a_user_edit_at_rest_is_left_for_the_engine_to_release() -> None:
    adopted = adopt_revisions(
        at_rest("s1"), revision="edited", stable_revision="s1", canary_runs_spec=False
    )
    assert adopted.status.canary_revision == "s1"
    assert adopted.notes == ()


def rolled_back() -> HarnessDeploymentStatus:
    return HarnessDeploymentStatus(
        phase=Phase.ROLLED_BACK,
        stable_revision="old-stable",
        canary_revision="old-bad",
        rollback=RollbackRecord(reason="Aborted", revision="old-bad", at=AT),
    )


def test_rolled_back_revision_is_renamed_when_the_canary_runs_the_spec() -> None:
    adopted = adopt_revisions(
        rolled_back(), revision="new-bad", stable_revision="new-stable", canary_runs_spec=True
    )
    status = adopted.status
    assert (status.stable_revision, status.canary_revision) == ("new-stable", "new-bad")
    assert status.rollback is not None
    assert status.rollback.revision == "new-bad"
    assert status.phase is Phase.ROLLED_BACK


def test_rolled_back_revision_stays_when_the_spec_changed_since() -> None:
    adopted = adopt_revisions(
        rolled_back(), revision="fixed", stable_revision="new-stable", canary_runs_spec=False
    )
    assert adopted.status.canary_revision == "old-bad"
    assert adopted.status.rollback is not None
    assert adopted.status.rollback.revision == "old-bad"


def test_release_in_flight_keeps_its_step() -> None:
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
    assert adopted.status.canary_revision == "new-canary"
    assert (adopted.status.current_step, adopted.status.canary_weight) == (2, 50)


def test_canary_id_is_never_renamed_at_rest() -> None:
    """At rest the canary id is stable's; a canary that 'runs the spec' proves nothing."""
    status = at_rest("s1").model_copy(update={"canary_revision": "s0"})
    adopted = adopt_revisions(status, revision="x", stable_revision="s1", canary_runs_spec=True)
    assert adopted.status.canary_revision == "s0"

"""Adopting revision ids that another operator version computed, without a release.

A revision id is a hash of the rendered pod template, so a new operator version may name
the very same pods differently (a new hashing scheme, a renamed label). A changed id must
not be mistaken for a new revision: that would release every harness on upgrade. So before
each tick the stored ids are brought up to date:

- the stable revision is recomputed from the stable spec and config hashes recorded in the
  status (that is, by definition, what stable runs);
- the canary revision of a release in flight, or the rolled-back revision, is replaced by
  the current spec's revision when the live canary Deployment still carries the stored id
  *and* already runs exactly the current spec's pod template. Both are needed: the second
  alone is also true right after the operator applied a genuinely new revision and crashed
  before saving the status, which must restart the release, not continue it.

Pure: the controller observes the live Deployment and passes the verdict in.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness_operator.api.status import RELEASE_PHASES, HarnessDeploymentStatus, Phase
from harness_operator.rollout.model import NORMAL, Note


@dataclass(frozen=True)
class Adoption:
    status: HarnessDeploymentStatus
    notes: tuple[Note, ...] = ()


def adopt_revisions(
    status: HarnessDeploymentStatus,
    *,
    revision: str,
    stable_revision: str | None,
    canary_runs_spec: bool,
) -> Adoption:
    """`status` with its revision ids renamed to the current scheme where the pods they
    name are unchanged.

    `revision` is the current spec's revision, `stable_revision` the revision of the
    recorded stable spec (None when none is recorded), `canary_runs_spec` whether the live
    canary Deployment carries the stored canary (or rolled-back) id and runs exactly the
    current spec's pod template.
    """
    renamed: dict[str, str] = {}
    update: dict[str, object] = {}
    old_stable = status.stable_revision
    if stable_revision is not None and old_stable not in (None, stable_revision):
        renamed[str(old_stable)] = stable_revision
        update["stable_revision"] = stable_revision
    old_canary = status.canary_revision
    in_flight = status.phase in RELEASE_PHASES or status.phase is Phase.ROLLED_BACK
    if (
        old_canary is not None
        and old_canary not in renamed
        and old_canary != revision
        and in_flight
        and canary_runs_spec
    ):
        renamed[old_canary] = revision
    if old_canary in renamed:
        update["canary_revision"] = renamed[str(old_canary)]
    rollback = status.rollback
    if rollback is not None and rollback.revision in renamed:
        update["rollback"] = rollback.model_copy(
            update={"revision": renamed[str(rollback.revision)]}
        )
    if not update:
        return Adoption(status)
    pairs = ", ".join(f"{old} is now {new}" for old, new in renamed.items())
    note = Note(
        NORMAL,
        "RevisionAdopted",
        f"the operator names revisions differently since its upgrade: {pairs}; the pods"
        " are unchanged, so nothing is released",
    )
    return Adoption(status.model_copy(update=update), (note,))

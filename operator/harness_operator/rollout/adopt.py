"""Adopting the revisions an older operator named, without a release and without touching
a pod.

A revision id is a hash of the rendered pod template, so a new operator version may compute
a different id for the very same pods (a new hashing scheme, say). Taken at face value, a
changed id would release every harness on upgrade, and relabelling the pods would restart
them all. Instead, the id already in use is kept and recorded as an *alias* of the newly
computed one (`status.revisionAliases`: new id -> id in use); the controller and renderer
map through it, so the pods keep their labels and nothing is released:

- the stable revision's new id is computed from the stable spec and config hashes recorded
  in the status (that is, by definition, what stable runs);
- the current spec's new id is an alias of the stored canary (release in flight) or
  rolled-back id when the live canary Deployment still carries that id *and* runs exactly
  the current spec's pod template. Both are needed: the second alone is also true right
  after the operator applied a genuinely new revision and crashed before saving the status,
  which must restart the release, not continue it.

An alias lives as long as the id it points to is the stable, canary or rolled-back one; the
next real release retires it. Pure: the controller observes the live Deployment and passes
the verdict in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness_operator.api.status import RELEASE_PHASES, HarnessDeploymentStatus, Phase
from harness_operator.rollout.model import NORMAL, Note


@dataclass(frozen=True)
class Adoption:
    status: HarnessDeploymentStatus
    notes: tuple[Note, ...] = ()

    def resolve(self, revision: str) -> str:
        """The id in use for a computed revision (itself when it has no alias)."""
        return (self.status.revision_aliases or {}).get(revision, revision)


def adopt_revisions(
    status: HarnessDeploymentStatus,
    *,
    revision: str,
    stable_revision: str | None,
    canary_runs_spec: bool,
) -> Adoption:
    """`status` with aliases for the ids in use whose pods are unchanged.

    `revision` is the current spec's revision as this operator computes it,
    `stable_revision` that of the recorded stable spec (None when none is recorded), and
    `canary_runs_spec` whether the live canary Deployment carries the stored canary (or
    rolled-back) id and runs exactly the current spec's pod template.
    """
    aliases = dict(status.revision_aliases or {})
    added: dict[str, str] = {}

    def alias(computed: str, in_use: str) -> None:
        if computed != in_use and aliases.get(computed) != in_use:
            aliases[computed] = added[computed] = in_use

    if stable_revision is not None and status.stable_revision is not None:
        alias(stable_revision, status.stable_revision)
    in_flight = status.phase in RELEASE_PHASES or status.phase is Phase.ROLLED_BACK
    if in_flight and canary_runs_spec and status.canary_revision is not None:
        alias(revision, status.canary_revision)
    if not added:
        return Adoption(status)
    pairs = ", ".join(f"{new} of revision {old}" for new, old in added.items())
    note = Note(
        NORMAL,
        "RevisionAdopted",
        f"this operator computes revision ids differently ({pairs}); the pods are unchanged,"
        " so they keep their ids and nothing is released",
    )
    return Adoption(status.model_copy(update={"revision_aliases": aliases}), (note,))


def prune_aliases(status: HarnessDeploymentStatus) -> Mapping[str, str] | None:
    """The aliases still pointing at an id in use (None when none is left)."""
    in_use = {
        status.stable_revision,
        status.canary_revision,
        status.rollback.revision if status.rollback else None,
    }
    kept = {k: v for k, v in (status.revision_aliases or {}).items() if v in in_use}
    return kept or None

"""Revisions: a short, stable hash of what a track's pods run.

A revision is computed from the pod template the renderer produces (see
`workload.revision`), so by construction only a change that reaches the pods — image, env,
model, prompt, probes, a referenced ConfigMap's or Secret's content, ... — makes a new
revision and starts a release. Spec sections that shape other objects (`replicas`,
`autoscaling`, `service`, `disruptionBudget`, `rollout`, `analysis`, and any future one)
never do, without anyone keeping a list.

`legacy_revision` is the scheme of operator 0.1 (a hash of the spec minus a deny-list). It
is kept only so that an upgraded operator can recognise the revisions an older one stored
and adopt the new ids without a release (`rollout.adopt`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from harness_operator.api import HarnessDeploymentSpec

REVISION_LENGTH: Final = 10


def short_hash(data: Any) -> str:
    """Hex prefix of the SHA-256 of canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_LENGTH]


def config_hash(config_hashes: Mapping[str, str]) -> str:
    """One hash over all referenced config contents (the pod-template annotation)."""
    return short_hash(dict(config_hashes))


_LEGACY_IGNORED: Final = frozenset(
    {"replicas", "autoscaling", "service", "disruption_budget", "rollout"}
)


def legacy_revision(spec: HarnessDeploymentSpec, config_hashes: Mapping[str, str]) -> str:
    """The revision operator 0.1 gave this spec (migration only; see the module doc)."""
    fields = spec.model_dump(
        mode="json", by_alias=True, exclude_defaults=True, exclude=set(_LEGACY_IGNORED)
    )
    return short_hash({"spec": fields, "configs": dict(config_hashes)})

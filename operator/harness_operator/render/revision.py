"""Revisions: a short, stable hash of everything that shapes a track's pods.

The hash covers the spec fields that end up in the pod template (image, command, env,
resources, ports, probes, pod template additions, termination timing) and the content hashes
of referenced ConfigMaps and Secrets. It ignores fields that only change other objects
(`replicas`, `autoscaling`, `service`, `disruptionBudget`, `rollout`), so changing those
never starts a release.

Fields equal to their default are left out before hashing: adding a new defaulted field in a
later operator version keeps existing revisions (and does not release every harness anew),
and writing a default out explicitly (`port: 8080`) is not a change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from harness_operator.api import HarnessDeploymentSpec

REVISION_LENGTH: Final = 10
NOT_IN_POD_TEMPLATE: Final = frozenset(
    {"replicas", "autoscaling", "service", "disruption_budget", "rollout"}
)


def pod_template_fields(spec: HarnessDeploymentSpec) -> dict[str, Any]:
    """The part of `spec` that shapes the pods, without defaults, as JSON-ready data."""
    return spec.model_dump(
        mode="json", by_alias=True, exclude_defaults=True, exclude=set(NOT_IN_POD_TEMPLATE)
    )


def short_hash(data: Any) -> str:
    """Hex prefix of the SHA-256 of canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_LENGTH]


def revision(spec: HarnessDeploymentSpec, config_hashes: Mapping[str, str]) -> str:
    """Revision of the pods a track running `spec` with these config contents would have."""
    return short_hash({"spec": pod_template_fields(spec), "configs": dict(config_hashes)})


def config_hash(config_hashes: Mapping[str, str]) -> str:
    """One hash over all referenced config contents (the pod-template annotation)."""
    return short_hash(dict(config_hashes))

"""Names and labels of everything the operator generates for a HarnessDeployment.

One place, so that the renderer, the kube adapter, the handlers and the tests agree:
`<name>` is the apex Service and VirtualService, `<name>-stable` and `<name>-canary` are the
two tracks' Deployments, Services, HPAs and DestinationRules. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from harness_operator import GROUP

MANAGED_BY: Final = "harness-operator"
APP_CONTAINER: Final = "harness"
"""Name of the harness container in every generated pod."""
CLUSTER_DOMAIN: Final = "cluster.local"

LABEL_NAME: Final = f"{GROUP}/name"
"""Name of the owning HarnessDeployment; on every generated object and pod."""
LABEL_TRACK: Final = f"{GROUP}/track"
"""`stable` or `canary`; on per-track objects and their pods."""
LABEL_REVISION: Final = f"{GROUP}/revision"
"""Revision (pod-template hash) a pod runs."""
LABEL_APP_NAME: Final = "app.kubernetes.io/name"
LABEL_APP_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_APP_MANAGED_BY: Final = "app.kubernetes.io/managed-by"

ANNOTATION_CONFIG_HASH: Final = f"{GROUP}/config-hash"
"""Pod-template annotation: hash of the referenced ConfigMaps and Secrets."""

MAX_DNS_LABEL: Final = 63
SERVICE_NAME_PATTERN: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
"""DNS-1035 label: what a Service name must be."""


class Track(StrEnum):
    """The two Deployments a HarnessDeployment runs."""

    STABLE = "stable"
    CANARY = "canary"


LONGEST_SUFFIX: Final = max(len(f"-{t}") for t in Track)
MAX_NAME_LENGTH: Final = MAX_DNS_LABEL - LONGEST_SUFFIX
"""56: `<name>-canary` must still be a valid Service name."""


def apex_name(name: str) -> str:
    """The apex Service and the VirtualService: what clients call."""
    return name


def track_name(name: str, track: Track) -> str:
    """Deployment, Service, HPA and DestinationRule of one track."""
    return f"{name}-{track}"


def stable_name(name: str) -> str:
    return track_name(name, Track.STABLE)


def canary_name(name: str) -> str:
    return track_name(name, Track.CANARY)


def controls_name(name: str) -> str:
    """The ConfigMap of the operator's controls for a harness (the budget kill switch)."""
    return f"{name}-controls"


def service_host(service: str, namespace: str) -> str:
    """Cluster-internal FQDN of a Service."""
    return f"{service}.{namespace}.svc.{CLUSTER_DOMAIN}"


def common_labels(name: str) -> dict[str, str]:
    """Labels on every object generated for HarnessDeployment `name`."""
    return {
        LABEL_APP_NAME: name,
        LABEL_APP_INSTANCE: name,
        LABEL_APP_MANAGED_BY: MANAGED_BY,
        LABEL_NAME: name,
    }


def selector_labels(name: str, track: Track) -> dict[str, str]:
    """The immutable Deployment selector of a track, also used by its Service, PDB and
    topology spread. Never add keys: Deployment selectors cannot change."""
    return {LABEL_NAME: name, LABEL_TRACK: str(track)}


def track_labels(name: str, track: Track) -> dict[str, str]:
    """Labels on a per-track object."""
    return {**common_labels(name), **selector_labels(name, track)}


def pod_labels(name: str, track: Track, revision: str) -> dict[str, str]:
    """Labels the operator puts on a track's pods."""
    return {**track_labels(name, track), LABEL_REVISION: revision}


def name_problems(name: str) -> list[str]:
    """Why `name` cannot be a HarnessDeployment name (empty when it can). The CRD enforces
    the same with a CEL rule; this is for objects created before it, and for messages."""
    problems = []
    if len(name) > MAX_NAME_LENGTH:
        problems.append(
            f"name {name!r} has {len(name)} characters; at most {MAX_NAME_LENGTH} fit, because"
            f" the generated Service {canary_name(name)!r} must be at most {MAX_DNS_LABEL}"
        )
    if not SERVICE_NAME_PATTERN.match(name):
        problems.append(
            f"name {name!r} must be a DNS-1035 label (lowercase letters, digits and '-',"
            " starting with a letter) because it names Services"
        )
    return problems

"""Object metadata shared by every builder: name, namespace, labels, owner reference."""

from __future__ import annotations

import copy
from typing import Any

from harness_operator.render.state import HarnessRef, K8sObject


def object_meta(hd: HarnessRef, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """`metadata` of a generated object owned by `hd`."""
    return {
        "name": name,
        "namespace": hd.namespace,
        "labels": dict(labels),
        "ownerReferences": [hd.owner_reference()],
    }


def k8s_object(
    api_version: str, kind: str, metadata: dict[str, Any], spec: dict[str, Any]
) -> K8sObject:
    """A complete object. The spec is deep-copied: builders pass lists and dicts of the
    (frozen, but not deeply immutable) spec models through, and callers may mutate output."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata,
        "spec": copy.deepcopy(spec),
    }

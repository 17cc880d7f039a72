"""Istio routing (networking.istio.io/v1): one VirtualService `<name>` that splits traffic
between the stable and canary Services by weight, and a DestinationRule per track host.

This is the only module that knows Istio's shapes; another mesh or the Gateway API would get
a sibling module with the same two functions.
"""

from __future__ import annotations

from typing import Any, Final

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.naming import (
    Track,
    apex_name,
    common_labels,
    service_host,
    track_labels,
    track_name,
)
from harness_operator.render.meta import k8s_object, object_meta
from harness_operator.render.state import HarnessRef, K8sObject

ISTIO_API_VERSION: Final = "networking.istio.io/v1"
MESH_GATEWAY: Final = "mesh"
PRIMARY_ROUTE: Final = "primary"


def render_virtual_service(
    hd: HarnessRef, spec: HarnessDeploymentSpec, canary_weight: int
) -> K8sObject:
    """The VirtualService: `100 - canary_weight` percent to stable, the rest to canary."""
    if not 0 <= canary_weight <= 100:
        raise ValueError(f"canary_weight must be within 0..100, not {canary_weight}")
    body: dict[str, Any] = {"hosts": vs_hosts(hd, spec)}
    if spec.service.gateways:
        # Binding to gateways drops the implicit mesh gateway; keep in-mesh callers routed.
        body["gateways"] = _unique([*spec.service.gateways, MESH_GATEWAY])
    body["http"] = [
        {
            "name": PRIMARY_ROUTE,
            "route": [
                _destination(hd, spec, Track.STABLE, 100 - canary_weight),
                _destination(hd, spec, Track.CANARY, canary_weight),
            ],
        }
    ]
    return k8s_object(
        ISTIO_API_VERSION,
        "VirtualService",
        object_meta(hd, apex_name(hd.name), common_labels(hd.name)),
        body,
    )


def vs_hosts(hd: HarnessRef, spec: HarnessDeploymentSpec) -> list[str]:
    """The apex Service name, then `spec.service.hosts` without the apex's own longer forms
    (`<name>.<ns>`, `<name>.<ns>.svc[.cluster.local]`), which Istio treats as the same host."""
    apex = apex_name(hd.name)
    aliases = {
        f"{apex}.{hd.namespace}",
        f"{apex}.{hd.namespace}.svc",
        service_host(apex, hd.namespace),
    }
    return _unique([apex, *(h for h in spec.service.hosts if h not in aliases)])


def _destination(
    hd: HarnessRef, spec: HarnessDeploymentSpec, track: Track, weight: int
) -> dict[str, Any]:
    return {
        "destination": {
            "host": service_host(track_name(hd.name, track), hd.namespace),
            "port": {"number": spec.service.port},
        },
        "weight": weight,
    }


def render_destination_rules(hd: HarnessRef) -> list[K8sObject]:
    """One DestinationRule per track Service, stable first."""
    return [
        k8s_object(
            ISTIO_API_VERSION,
            "DestinationRule",
            object_meta(hd, track_name(hd.name, track), track_labels(hd.name, track)),
            {"host": service_host(track_name(hd.name, track), hd.namespace)},
        )
        for track in Track
    ]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))

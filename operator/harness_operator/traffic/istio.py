"""Istio routing (networking.istio.io/v1): one VirtualService `<name>` that splits traffic
between the stable and canary Services by weight, and a DestinationRule per track host.

Host-level split (like Flagger): each track has its own Service, so a weight change never
depends on pod labels and a rollback is one write of the VirtualService. A/B routes come
first (Istio picks the first matching route); mirroring rides on the default route.
This is the only module that knows Istio's shapes.
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
from harness_operator.traffic.base import Route

ISTIO_API_VERSION: Final = "networking.istio.io/v1"
MESH_GATEWAY: Final = "mesh"
PRIMARY_ROUTE: Final = "primary"
CANARY_MATCH_ROUTE: Final = "canary-match"


class IstioRouter:
    """`Router` for Istio: the VirtualService and the two DestinationRules."""

    def render(self, hd: HarnessRef, spec: HarnessDeploymentSpec, route: Route) -> list[K8sObject]:
        return [*render_destination_rules(hd), render_virtual_service(hd, spec, route)]

    def observe(self, hd: HarnessRef, live: K8sObject | None) -> Route | None:
        return observe_route(hd, live)


def render_virtual_service(hd: HarnessRef, spec: HarnessDeploymentSpec, route: Route) -> K8sObject:
    """The VirtualService for `route`: `100 - canary_weight` percent to stable by default."""
    body: dict[str, Any] = {"hosts": vs_hosts(hd, spec)}
    if spec.service.gateways:
        # Binding to gateways drops the implicit mesh gateway; keep in-mesh callers routed.
        body["gateways"] = _unique([*spec.service.gateways, MESH_GATEWAY])
    http: list[dict[str, Any]] = []
    if route.canary_match:
        http.append(
            {
                "name": CANARY_MATCH_ROUTE,
                "match": [dict(m) for m in route.canary_match],
                "route": [_destination(hd, spec, Track.CANARY, 100)],
            }
        )
    primary: dict[str, Any] = {
        "name": PRIMARY_ROUTE,
        "route": [
            _destination(hd, spec, Track.STABLE, 100 - route.canary_weight),
            _destination(hd, spec, Track.CANARY, route.canary_weight),
        ],
    }
    if route.mirror_percent:
        canary = _destination(hd, spec, Track.CANARY, 0)["destination"]
        primary["mirror"] = canary
        primary["mirrorPercentage"] = {"value": float(route.mirror_percent)}
    http.append(primary)
    body["http"] = http
    return k8s_object(
        ISTIO_API_VERSION,
        "VirtualService",
        object_meta(hd, apex_name(hd.name), common_labels(hd.name)),
        body,
    )


def observe_route(hd: HarnessRef, live: K8sObject | None) -> Route | None:
    """Read the route back from a live VirtualService (None when it is not ours to read)."""
    if live is None:
        return None
    canary_host = service_host(track_name(hd.name, Track.CANARY), hd.namespace)
    weight = 0
    mirror = 0
    match: tuple[dict[str, Any], ...] = ()
    for http in live.get("spec", {}).get("http") or []:
        if http.get("name") == CANARY_MATCH_ROUTE:
            match = tuple(http.get("match") or ())
        elif http.get("name") == PRIMARY_ROUTE:
            for dest in http.get("route") or []:
                if dest.get("destination", {}).get("host") == canary_host:
                    weight = int(dest.get("weight", 0))
            if http.get("mirror"):
                mirror = int(float((http.get("mirrorPercentage") or {}).get("value", 100)))
    try:
        return Route(canary_weight=weight, mirror_percent=mirror, canary_match=match)
    except ValueError:
        return None


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

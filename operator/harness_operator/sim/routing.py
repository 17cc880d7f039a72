"""Where simulated requests go: the live VirtualService read as request shares per track.

Istio semantics, reduced to what the operator renders (`traffic/istio.py`): routes are tried
in order and the first that matches wins; a route without `match` matches everything. The
simulated clients come in two kinds: plain requests, which only a route without `match` takes,
and requests carrying the A/B header, which the first route of all takes (a `match` route
placed before the default route, or the default route itself). Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness_operator.naming import CLUSTER_DOMAIN, Track, track_name


@dataclass(frozen=True)
class RouteShare:
    """One HTTP route: the fraction of its requests each track serves, and the fraction of
    its requests copied to a track by `mirror` (responses discarded)."""

    index: int
    """Position of the route in `spec.http`."""
    weights: Mapping[Track, float] = field(default_factory=dict)
    mirror: Mapping[Track, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Routing:
    """The routes plain and A/B-header requests take; None when no route takes them (Istio
    answers 404 and no track sees the request)."""

    plain: RouteShare | None = None
    header: RouteShare | None = None

    @property
    def has_match(self) -> bool:
        """Header requests take a route of their own (an A/B test is on)."""
        return self.header is not None and (
            self.plain is None or self.header.index != self.plain.index
        )


NO_ROUTING = Routing()


def track_of_host(host: str, namespace: str, name: str) -> Track | None:
    """The track whose Service `host` names, in any form Istio accepts (short name,
    `<svc>.<ns>`, `<svc>.<ns>.svc`, the FQDN); None for any other host."""
    for track in Track:
        service = track_name(name, track)
        forms = {
            service,
            f"{service}.{namespace}",
            f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.{CLUSTER_DOMAIN}",
        }
        if host in forms:
            return track
    return None


def route_share(index: int, http: Mapping[str, Any], namespace: str, name: str) -> RouteShare:
    """Shares of one `spec.http[]` entry. Weights are normalised by their sum over all
    destinations (a destination that is not a track keeps its share; those requests are lost
    to the simulation). A lone destination without a weight gets everything."""
    destinations = [d for d in http.get("route") or [] if isinstance(d, Mapping)]
    raw: list[tuple[Track | None, float]] = []
    for dest in destinations:
        host = str((dest.get("destination") or {}).get("host", ""))
        default = 100.0 if len(destinations) == 1 else 0.0
        raw.append((track_of_host(host, namespace, name), _number(dest.get("weight"), default)))
    total = sum(w for _, w in raw)
    weights: dict[Track, float] = {}
    if total > 0:
        for track, weight in raw:
            if track is not None and weight > 0:
                weights[track] = weights.get(track, 0.0) + weight / total
    mirror: dict[Track, float] = {}
    target = http.get("mirror")
    if isinstance(target, Mapping):
        mirror_track = track_of_host(str(target.get("host", "")), namespace, name)
        if mirror_track is not None:
            percent = _mirror_percent(http)
            if percent > 0:
                mirror[mirror_track] = min(percent, 100.0) / 100.0
    return RouteShare(index=index, weights=weights, mirror=mirror)


def parse_virtual_service(vs: Mapping[str, Any] | None, namespace: str, name: str) -> Routing:
    """Routing of the VirtualService `vs` for HarnessDeployment `name` (NO_ROUTING when the
    VirtualService is missing or has no HTTP routes)."""
    if vs is None:
        return NO_ROUTING
    routes = [r for r in (vs.get("spec") or {}).get("http") or [] if isinstance(r, Mapping)]
    if not routes:
        return NO_ROUTING
    plain_index = next((i for i, r in enumerate(routes) if not r.get("match")), None)
    plain = (
        None
        if plain_index is None
        else route_share(plain_index, routes[plain_index], namespace, name)
    )
    header = plain if plain_index == 0 else route_share(0, routes[0], namespace, name)
    return Routing(plain=plain, header=header)


def _mirror_percent(http: Mapping[str, Any]) -> float:
    """`mirrorPercentage.value`, else the deprecated integer `mirrorPercent`, else 100 (what
    Istio mirrors when only `mirror` is set)."""
    percentage = http.get("mirrorPercentage")
    if isinstance(percentage, Mapping) and "value" in percentage:
        return _number(percentage.get("value"), 100.0)
    if "mirrorPercent" in http:
        return _number(http.get("mirrorPercent"), 100.0)
    return 100.0


def _number(value: Any, default: float) -> float:
    if value is None or isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and number >= 0 else default

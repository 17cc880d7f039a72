"""The simulation reads request shares from VirtualServices, including the operator's own."""

from __future__ import annotations

from typing import Any

import pytest

from harness_operator.naming import Track
from harness_operator.render import K8sObject  # before traffic (circular import otherwise)
from harness_operator.sim import parse_virtual_service
from harness_operator.sim.routing import NO_ROUTING, track_of_host
from harness_operator.traffic import Route, render_virtual_service
from unit.render_helpers import HD, quickstart

NS, NAME = HD.namespace, HD.name
STABLE = f"{NAME}-stable.{NS}.svc.cluster.local"
CANARY = f"{NAME}-canary.{NS}.svc.cluster.local"


def dest(host: str, weight: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"destination": {"host": host, "port": {"number": 80}}}
    if weight is not None:
        out["weight"] = weight
    return out


def vs(*http: dict[str, Any]) -> K8sObject:
    return {"spec": {"hosts": [NAME], "http": list(http)}}


def test_reads_the_weights_the_operator_renders() -> None:
    rendered = render_virtual_service(HD, quickstart(), Route(canary_weight=5))
    routing = parse_virtual_service(rendered, NS, NAME)
    assert routing.plain is not None
    assert dict(routing.plain.weights) == pytest.approx({Track.STABLE: 0.95, Track.CANARY: 0.05})
    assert not routing.plain.mirror
    assert not routing.has_match


def test_reads_mirror_and_match_the_operator_renders() -> None:
    route = Route(
        canary_weight=0,
        mirror_percent=30,
        canary_match=({"headers": {"x-canary": {"exact": "yes"}}},),
    )
    routing = parse_virtual_service(render_virtual_service(HD, quickstart(), route), NS, NAME)
    assert routing.has_match
    assert routing.header is not None
    assert routing.plain is not None
    assert dict(routing.header.weights) == {Track.CANARY: 1.0}
    assert dict(routing.plain.weights) == {Track.STABLE: 1.0}
    assert dict(routing.plain.mirror) == pytest.approx({Track.CANARY: 0.3})


@pytest.mark.parametrize(
    "host",
    [f"{NAME}-canary", f"{NAME}-canary.{NS}", f"{NAME}-canary.{NS}.svc", CANARY],
)
def test_every_istio_host_form_names_the_track(host: str) -> None:
    assert track_of_host(host, NS, NAME) is Track.CANARY


def test_other_hosts_name_no_track() -> None:
    assert track_of_host(f"{NAME}-canary.other.svc.cluster.local", NS, NAME) is None
    assert track_of_host(f"x{NAME}-stable", NS, NAME) is None


def test_weights_are_normalised_and_unknown_hosts_keep_their_share() -> None:
    routing = parse_virtual_service(
        vs({"route": [dest(STABLE, 2), dest(CANARY, 1), dest("elsewhere", 1)]}), NS, NAME
    )
    assert routing.plain is not None
    assert dict(routing.plain.weights) == pytest.approx({Track.STABLE: 0.5, Track.CANARY: 0.25})


def test_a_lone_destination_without_weight_gets_everything() -> None:
    routing = parse_virtual_service(vs({"route": [dest(CANARY)]}), NS, NAME)
    assert routing.plain is not None
    assert dict(routing.plain.weights) == {Track.CANARY: 1.0}


@pytest.mark.parametrize(
    ("extra", "share"),
    [
        ({}, 1.0),
        ({"mirrorPercentage": {"value": 12.5}}, 0.125),
        ({"mirrorPercent": 40}, 0.4),
        ({"mirrorPercentage": {"value": 0}}, None),
    ],
)
def test_mirror_percentage(extra: dict[str, Any], share: float | None) -> None:
    http = {"route": [dest(STABLE, 100)], "mirror": {"host": CANARY}, **extra}
    routing = parse_virtual_service(vs(http), NS, NAME)
    assert routing.plain is not None
    assert routing.plain.mirror.get(Track.CANARY) == (
        None if share is None else pytest.approx(share)
    )


def test_a_match_route_after_the_default_route_is_unreachable() -> None:
    match = {"match": [{"headers": {"x": {"exact": "1"}}}], "route": [dest(CANARY)]}
    routing = parse_virtual_service(vs({"route": [dest(STABLE)]}, match), NS, NAME)
    assert not routing.has_match


def test_only_match_routes_leave_plain_requests_unrouted() -> None:
    match = {"match": [{"headers": {"x": {"exact": "1"}}}], "route": [dest(CANARY)]}
    routing = parse_virtual_service(vs(match), NS, NAME)
    assert routing.plain is None
    assert routing.has_match


@pytest.mark.parametrize("obj", [None, {}, {"spec": {}}, {"spec": {"http": []}}])
def test_no_virtual_service_means_no_routing(obj: dict[str, Any] | None) -> None:
    assert parse_virtual_service(obj, NS, NAME) == NO_ROUTING

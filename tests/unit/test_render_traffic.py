"""Services, the VirtualService and the DestinationRules."""

from __future__ import annotations

import pytest

from harness_operator.render import render_services
from harness_operator.traffic import (
    Route,
    observe_route,
    render_destination_rules,
    render_virtual_service,
)
from unit.render_helpers import HD, quickstart, spec


def test_services_select_their_track() -> None:
    apex, stable, canary = render_services(HD, quickstart())
    assert [s["metadata"]["name"] for s in (apex, stable, canary)] == [
        "pr-reviewer",
        "pr-reviewer-stable",
        "pr-reviewer-canary",
    ]
    stable_selector = {"harness.dev/name": "pr-reviewer", "harness.dev/track": "stable"}
    assert apex["spec"]["selector"] == stable_selector  # like Flagger's apex
    assert stable["spec"]["selector"] == stable_selector
    assert canary["spec"]["selector"]["harness.dev/track"] == "canary"
    for service in (apex, stable, canary):
        assert service["apiVersion"] == "v1"
        assert service["spec"]["ports"] == [
            {
                "name": "http",
                "port": 80,
                "targetPort": "http",
                "protocol": "TCP",
                "appProtocol": "http",
            }
        ]


def test_service_port_follows_spec() -> None:
    (apex, *_) = render_services(HD, spec(service={"port": 8443}))
    assert apex["spec"]["ports"][0]["port"] == 8443


@pytest.mark.parametrize("weight", [0, 1, 20, 50, 99, 100])
def test_virtual_service_weights_sum_to_100(weight: int) -> None:
    vs = render_virtual_service(HD, quickstart(), Route(canary_weight=weight))
    (route,) = vs["spec"]["http"]
    assert route["name"] == "primary"
    stable, canary = route["route"]
    assert stable["destination"] == {
        "host": "pr-reviewer-stable.agents.svc.cluster.local",
        "port": {"number": 80},
    }
    assert canary["destination"]["host"] == "pr-reviewer-canary.agents.svc.cluster.local"
    assert (stable["weight"], canary["weight"]) == (100 - weight, weight)


@pytest.mark.parametrize("weight", [-1, 101])
def test_virtual_service_rejects_bad_weights(weight: int) -> None:
    with pytest.raises(ValueError, match="canary_weight"):
        render_virtual_service(HD, quickstart(), Route(canary_weight=weight))


def test_virtual_service_hosts_and_gateways() -> None:
    vs = render_virtual_service(HD, quickstart(), Route())
    assert vs["apiVersion"] == "networking.istio.io/v1"
    assert vs["metadata"]["name"] == "pr-reviewer"
    # The quickstart's host is the apex Service's own FQDN: listed once, as the short name.
    assert vs["spec"]["hosts"] == ["pr-reviewer"]
    assert "gateways" not in vs["spec"]

    s = spec(
        service={
            "hosts": ["agents.example.com", "*.agents.example.com"],
            "gateways": ["edge/public"],
        }
    )
    vs = render_virtual_service(HD, s, Route())
    assert vs["spec"]["hosts"] == ["pr-reviewer", "agents.example.com", "*.agents.example.com"]
    assert vs["spec"]["gateways"] == ["edge/public", "mesh"]
    explicit_mesh = render_virtual_service(HD, spec(service={"gateways": ["mesh", "gw"]}), Route())
    assert explicit_mesh["spec"]["gateways"] == ["mesh", "gw"]


def test_destination_rules() -> None:
    stable, canary = render_destination_rules(HD)
    assert stable["apiVersion"] == "networking.istio.io/v1"
    assert stable["metadata"]["name"] == "pr-reviewer-stable"
    assert stable["spec"] == {"host": "pr-reviewer-stable.agents.svc.cluster.local"}
    assert canary["spec"] == {"host": "pr-reviewer-canary.agents.svc.cluster.local"}


def test_mirroring_copies_a_share_of_the_default_route_to_canary() -> None:
    vs = render_virtual_service(HD, quickstart(), Route(mirror_percent=30))
    (primary,) = vs["spec"]["http"]
    assert primary["mirror"] == {
        "host": "pr-reviewer-canary.agents.svc.cluster.local",
        "port": {"number": 80},
    }
    assert primary["mirrorPercentage"] == {"value": 30.0}
    assert [d["weight"] for d in primary["route"]] == [100, 0]


def test_ab_match_routes_come_first_and_send_matches_to_canary() -> None:
    match = ({"headers": {"x-canary": {"exact": "yes"}}},)
    vs = render_virtual_service(HD, quickstart(), Route(canary_match=match))
    ab, primary = vs["spec"]["http"]
    assert ab["name"] == "canary-match"
    assert ab["match"] == [{"headers": {"x-canary": {"exact": "yes"}}}]
    assert ab["route"][0]["destination"]["host"].startswith("pr-reviewer-canary.")
    assert ab["route"][0]["weight"] == 100
    assert [d["weight"] for d in primary["route"]] == [100, 0]


@pytest.mark.parametrize(
    "route",
    [
        Route(),
        Route(canary_weight=25),
        Route(canary_weight=5, mirror_percent=50),
        Route(canary_match=({"headers": {"cookie": {"regex": "^(.*?;)?(canary=1)(;.*)?$"}}},)),
    ],
)
def test_the_route_reads_back_from_the_rendered_virtual_service(route: Route) -> None:
    vs = render_virtual_service(HD, quickstart(), route)
    assert observe_route(HD, vs) == route


def test_observing_nothing_or_a_foreign_shape() -> None:
    assert observe_route(HD, None) is None
    assert observe_route(HD, {"spec": {"http": [{"route": []}]}}) == Route()

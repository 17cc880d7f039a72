"""Traffic routers behind one small interface (`Router`): Istio first."""

from harness_operator.traffic.base import Route, Router
from harness_operator.traffic.istio import (
    IstioRouter,
    observe_route,
    render_destination_rules,
    render_virtual_service,
)

__all__ = [
    "IstioRouter",
    "Route",
    "Router",
    "observe_route",
    "render_destination_rules",
    "render_virtual_service",
]

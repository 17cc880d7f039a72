"""A traffic and telemetry generator for demos, integration tests and benchmarks.

`TrafficSim` plays live clients, the harness's /metrics and Istio's sidecar telemetry for
one HarnessDeployment, on loopback, following the real VirtualService: when the operator
shifts weight, the simulated traffic shifts with it. Each track's behaviour (errors,
latency, cost, tokens) is set at run time, so a scenario can make the canary misbehave and
watch the operator roll it back. Run it alone with `python -m harness_operator.sim`.

It never writes to the cluster; it only reads the VirtualService and the two Deployments.
"""

from harness_operator.sim.routing import RouteShare, Routing, parse_virtual_service
from harness_operator.sim.series import DURATION_BUCKETS
from harness_operator.sim.traffic import KubeReader, TrackBehaviour, TrafficSim

__all__ = [
    "DURATION_BUCKETS",
    "KubeReader",
    "RouteShare",
    "Routing",
    "TrackBehaviour",
    "TrafficSim",
    "parse_virtual_service",
]

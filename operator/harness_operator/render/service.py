"""Kubernetes Services: the apex `<name>` (selects stable pods, like Flagger's apex, for
callers outside the mesh) and one Service per track, which the VirtualService routes to."""

from __future__ import annotations

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.naming import (
    Track,
    apex_name,
    common_labels,
    selector_labels,
    track_labels,
    track_name,
)
from harness_operator.render.meta import k8s_object, object_meta
from harness_operator.render.state import HarnessRef, K8sObject
from harness_operator.render.workload import HTTP_PORT_NAME


def render_services(hd: HarnessRef, spec: HarnessDeploymentSpec) -> list[K8sObject]:
    """Apex, stable and canary Services, in that order."""
    apex = _service(
        hd, spec, apex_name(hd.name), common_labels(hd.name), selector_labels(hd.name, Track.STABLE)
    )
    tracks = [
        _service(
            hd,
            spec,
            track_name(hd.name, track),
            track_labels(hd.name, track),
            selector_labels(hd.name, track),
        )
        for track in Track
    ]
    return [apex, *tracks]


def _service(
    hd: HarnessRef,
    spec: HarnessDeploymentSpec,
    name: str,
    labels: dict[str, str],
    selector: dict[str, str],
) -> K8sObject:
    return k8s_object(
        "v1",
        "Service",
        object_meta(hd, name, labels),
        {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {
                    "name": HTTP_PORT_NAME,
                    "port": spec.service.port,
                    "targetPort": HTTP_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    )

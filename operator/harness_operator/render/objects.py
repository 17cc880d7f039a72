"""All desired objects of one HarnessDeployment, in apply order, plus the ones that must be
absent. This is the entry point the reconcile layer calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.shape import Shape
from harness_operator.naming import Track, track_name
from harness_operator.render.cron import render_cronjobs
from harness_operator.render.model import render_controls
from harness_operator.render.scaling import (
    hpa_tracks,
    keda_scales,
    render_hpas,
    render_pdb,
    render_scaled_objects,
    scaled_object_key,
)
from harness_operator.render.service import render_services
from harness_operator.render.state import Desired, HarnessRef, ObjectKey, ReleaseState
from harness_operator.render.workload import render_deployment

if TYPE_CHECKING:
    from harness_operator.traffic import Router

HPA_API_VERSION = "autoscaling/v2"


def render(
    hd: HarnessRef, spec: HarnessDeploymentSpec, state: ReleaseState, router: Router | None = None
) -> Desired:
    """Deployments, Services, HPAs, PDB and the router's objects (Istio by default) for `hd`.

    Order matters for a first apply: workloads before the routes that send traffic to them.
    """
    # Imported here: traffic builds on render's types, render composes traffic's objects.
    from harness_operator.traffic import IstioRouter, Route

    route = Route(
        canary_weight=state.canary_weight,
        mirror_percent=state.mirror_percent,
        canary_match=state.canary_match,
    )
    if spec.shape is Shape.CRON:
        # Runs to completion on a schedule: no Deployments, Services, routing or scaling
        # (and no shape changes to or from cron, so nothing of those to clean up).
        return Desired(
            objects=[*render_cronjobs(hd, spec, state), *render_controls(hd, spec, state)],
            absent=[],
        )
    # A worker harness takes no traffic: no Services, no routing (and any that a service
    # shape left behind must go).
    services = render_services(hd, spec)
    routes = (router or IstioRouter()).render(hd, spec, route)
    objects = [
        *(render_deployment(hd, spec, state, track) for track in Track),
        *(services if spec.routed else []),
        *render_hpas(hd, spec, state),
        *render_scaled_objects(hd, spec, state),
        render_pdb(hd, spec),
        *render_controls(hd, spec, state),
        *(routes if spec.routed else []),
    ]
    with_hpa = set(hpa_tracks(spec, state))
    absent = [
        ObjectKey(HPA_API_VERSION, "HorizontalPodAutoscaler", hd.namespace, track_name(hd.name, t))
        for t in Track
        if t not in with_hpa
    ]
    if not spec.routed:
        absent += [ObjectKey.of(o) for o in [*services, *routes]]
    if not keda_scales(spec, state):
        absent.append(scaled_object_key(hd))
    return Desired(objects=objects, absent=absent)

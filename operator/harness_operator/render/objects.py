"""All desired objects of one HarnessDeployment, in apply order, plus the ones that must be
absent. This is the entry point the reconcile layer calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.naming import Track, track_name
from harness_operator.render.model import render_controls
from harness_operator.render.scaling import hpa_tracks, render_hpas, render_pdb
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
    objects = [
        *(render_deployment(hd, spec, state, track) for track in Track),
        *render_services(hd, spec),
        *render_hpas(hd, spec, state),
        render_pdb(hd, spec),
        *render_controls(hd, spec, state),
        *(router or IstioRouter()).render(hd, spec, route),
    ]
    with_hpa = set(hpa_tracks(spec, state))
    absent = [
        ObjectKey(HPA_API_VERSION, "HorizontalPodAutoscaler", hd.namespace, track_name(hd.name, t))
        for t in Track
        if t not in with_hpa
    ]
    return Desired(objects=objects, absent=absent)

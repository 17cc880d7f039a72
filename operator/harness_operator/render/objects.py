"""All desired objects of one HarnessDeployment, in apply order, plus the ones that must be
absent. This is the entry point the reconcile layer calls."""

from __future__ import annotations

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.naming import Track, track_name
from harness_operator.render.istio import render_destination_rules, render_virtual_service
from harness_operator.render.scaling import hpa_tracks, render_hpas, render_pdb
from harness_operator.render.service import render_services
from harness_operator.render.state import Desired, HarnessRef, ObjectKey, ReleaseState
from harness_operator.render.workload import render_deployment

HPA_API_VERSION = "autoscaling/v2"


def render(hd: HarnessRef, spec: HarnessDeploymentSpec, state: ReleaseState) -> Desired:
    """Deployments, Services, HPAs, PDB, DestinationRules and the VirtualService for `hd`.

    Order matters for a first apply: workloads before the routes that send traffic to them.
    """
    objects = [
        *(render_deployment(hd, spec, state, track) for track in Track),
        *render_services(hd, spec),
        *render_hpas(hd, spec, state),
        render_pdb(hd, spec),
        *render_destination_rules(hd),
        render_virtual_service(hd, spec, state.canary_weight),
    ]
    with_hpa = set(hpa_tracks(spec, state))
    absent = [
        ObjectKey(HPA_API_VERSION, "HorizontalPodAutoscaler", hd.namespace, track_name(hd.name, t))
        for t in Track
        if t not in with_hpa
    ]
    return Desired(objects=objects, absent=absent)

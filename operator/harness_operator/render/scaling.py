"""HorizontalPodAutoscalers (autoscaling/v2) and the stable track's PodDisruptionBudget.

The stable HPA exists whenever `spec.autoscaling` is set; the canary HPA only while a
release runs canary pods. Both use the same bounds and metrics.
"""

from __future__ import annotations

from typing import Any, Final

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.spec import Autoscaling
from harness_operator.naming import Track, selector_labels, track_labels, track_name
from harness_operator.render.meta import k8s_object, object_meta
from harness_operator.render.state import HarnessRef, K8sObject, ObjectKey, ReleaseState

DEFAULT_CPU_UTILIZATION: Final = 80
"""Target when `autoscaling` names no metric (the HPA's own default, written out)."""


def hpa_tracks(spec: HarnessDeploymentSpec, state: ReleaseState) -> list[Track]:
    """Tracks that get an HPA."""
    if spec.autoscaling is None or state.scaled_to_zero:
        return []
    # A worker's canary is a share of stable's replicas, not autoscaled on its own.
    both = state.canary_active and spec.routed
    return [Track.STABLE, Track.CANARY] if both else [Track.STABLE]


def render_hpas(
    hd: HarnessRef, spec: HarnessDeploymentSpec, state: ReleaseState
) -> list[K8sObject]:
    """The HPAs of `hpa_tracks`, stable first."""
    if spec.autoscaling is None:
        return []
    return [_hpa(hd, spec.autoscaling, track) for track in hpa_tracks(spec, state)]


def _hpa(hd: HarnessRef, autoscaling: Autoscaling, track: Track) -> K8sObject:
    name = track_name(hd.name, track)
    return k8s_object(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        object_meta(hd, name, track_labels(hd.name, track)),
        {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": hpa_metrics(autoscaling),
        },
    )


def hpa_metrics(autoscaling: Autoscaling) -> list[dict[str, Any]]:
    """autoscaling/v2 MetricSpecs: CPU, memory, then the extra Pods/External ones."""
    metrics = []
    for resource, target in (
        ("cpu", autoscaling.target_cpu_utilization_percentage),
        ("memory", autoscaling.target_memory_utilization_percentage),
    ):
        if target is not None:
            metrics.append(_utilization(resource, target))
    metrics += [m.to_k8s() for m in autoscaling.metrics or []]
    return metrics or [_utilization("cpu", DEFAULT_CPU_UTILIZATION)]


def _utilization(resource: str, percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {
            "name": resource,
            "target": {"type": "Utilization", "averageUtilization": percent},
        },
    }


KEDA_API_VERSION: Final = "keda.sh/v1alpha1"


def keda_scales(spec: HarnessDeploymentSpec, state: ReleaseState) -> bool:
    """Whether KEDA scales the stable track (not while a budget stop holds it at zero)."""
    return spec.worker is not None and spec.worker.keda is not None and not state.scaled_to_zero


def scaled_object_key(hd: HarnessRef) -> ObjectKey:
    return ObjectKey(
        KEDA_API_VERSION, "ScaledObject", hd.namespace, track_name(hd.name, Track.STABLE)
    )


def render_scaled_objects(
    hd: HarnessRef, spec: HarnessDeploymentSpec, state: ReleaseState
) -> list[K8sObject]:
    """The stable track's KEDA ScaledObject. The canary has none: the operator gives it its
    share of stable's replicas, so it follows stable down to zero and back, and nothing of
    KEDA's (paused annotations, its HPA) is ever copied to it."""
    if not keda_scales(spec, state) or spec.worker is None or spec.worker.keda is None:
        return []
    keda = spec.worker.keda
    name = track_name(hd.name, Track.STABLE)
    return [
        k8s_object(
            KEDA_API_VERSION,
            "ScaledObject",
            object_meta(hd, name, track_labels(hd.name, Track.STABLE)),
            {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicaCount": keda.min_replica_count,
                "maxReplicaCount": keda.max_replica_count,
                "pollingInterval": keda.polling_interval,
                "cooldownPeriod": keda.cooldown_period,
                "triggers": keda.triggers,
            },
        )
    ]


def render_pdb(hd: HarnessRef, spec: HarnessDeploymentSpec) -> K8sObject:
    """PodDisruptionBudget of the stable track."""
    return k8s_object(
        "policy/v1",
        "PodDisruptionBudget",
        object_meta(hd, track_name(hd.name, Track.STABLE), track_labels(hd.name, Track.STABLE)),
        {
            "selector": {"matchLabels": selector_labels(hd.name, Track.STABLE)},
            "maxUnavailable": spec.disruption_budget.max_unavailable,
            # Pods that are not ready anyway must not block node drains.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    )

"""The two Deployments (`<name>-stable`, `<name>-canary`) and their pod template.

Pods follow the Restricted Pod Security Standard (non-root, RuntimeDefault seccomp, no
privilege escalation, all capabilities dropped) with a read-only root filesystem and a
size-limited emptyDir at /tmp. Whatever the user adds through `spec.podTemplate` is merged
in, but never overrides the security context, selector labels or probes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.shape import Shape
from harness_operator.api.spec import RESERVED_VOLUME, HttpProbe
from harness_operator.naming import (
    ANNOTATION_CONFIG_HASH,
    APP_CONTAINER,
    Track,
    pod_labels,
    selector_labels,
    track_labels,
    track_name,
)
from harness_operator.render.meta import k8s_object, object_meta
from harness_operator.render.model import model_env, model_mounts, model_volumes, service_account
from harness_operator.render.revision import config_hash, short_hash
from harness_operator.render.state import HarnessRef, K8sObject, ReleaseState

HTTP_PORT_NAME: Final = "http"
METRICS_PORT_NAME: Final = "metrics"
TMP_PATH: Final = "/tmp"
TMP_SIZE_LIMIT: Final = "1Gi"
DEFAULT_REQUESTS: Final = {"cpu": "250m", "memory": "512Mi"}
REVISION_HISTORY_LIMIT: Final = 3


def render_deployment(
    hd: HarnessRef, spec: HarnessDeploymentSpec, state: ReleaseState, track: Track
) -> K8sObject:
    """The Deployment of one track. `spec.replicas` is left out whenever an HPA owns the
    count, so that the operator's server-side apply never fights the autoscaler."""
    track_spec = state.stable_spec if track is Track.STABLE else state.canary_spec
    hashes = state.stable_hashes if track is Track.STABLE else state.config_hashes
    body: dict[str, Any] = {}
    replicas = _replicas(spec, state, track)
    if replicas is not None:
        body["replicas"] = replicas
    body |= {
        "selector": {"matchLabels": selector_labels(hd.name, track)},
        "strategy": {
            "type": "RollingUpdate",
            # Never drop below the wanted capacity while pods are replaced.
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
        "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
        "template": pod_template(hd, track_spec, track, hashes, state.revision_aliases),
    }
    return k8s_object(
        "apps/v1",
        "Deployment",
        object_meta(hd, track_name(hd.name, track), track_labels(hd.name, track)),
        body,
    )


def _replicas(spec: HarnessDeploymentSpec, state: ReleaseState, track: Track) -> int | None:
    if state.scaled_to_zero:
        return 0  # a budget stop: the autoscalers are removed meanwhile
    keda = spec.worker is not None and spec.worker.keda is not None
    if track is Track.STABLE and (spec.autoscaling is not None or keda):
        return None  # the HPA (or KEDA) owns the count
    if track is Track.STABLE and spec.shape is Shape.WORKER:
        # The canary's replicas are a share of the workers, not extra ones.
        return max(spec.replicas - state.canary_replicas, min(spec.replicas, 1))
    if track is Track.STABLE:
        return spec.replicas
    if spec.autoscaling is not None and state.canary_active and spec.routed:
        return None  # the canary HPA owns it during a release
    return state.canary_replicas


def pod_template(
    hd: HarnessRef,
    spec: HarnessDeploymentSpec,
    track: Track,
    config_hashes: Mapping[str, str],
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Pod template of a track running `spec` with these config contents; its revision
    label is the revision, or the id an older operator gave the same pods (`aliases`)."""
    template = _template(hd, spec, track, config_hashes)
    computed = revision(spec, config_hashes)
    label = (aliases or {}).get(computed, computed)
    template["metadata"]["labels"].update(pod_labels(hd.name, track, label))
    return template


_NEUTRAL = HarnessRef(name="harness", namespace="", uid="")
"""Identity the revision's template is rendered for: a revision names what the pods run,
the same for both tracks and whatever the HarnessDeployment is called."""


def revision(spec: HarnessDeploymentSpec, config_hashes: Mapping[str, str]) -> str:
    """Revision of the pods a track running `spec` with these config contents would have:
    a hash of the rendered pod template (without the revision label itself)."""
    return short_hash(_template(_NEUTRAL, spec, Track.STABLE, config_hashes))


def _template(
    hd: HarnessRef, spec: HarnessDeploymentSpec, track: Track, config_hashes: Mapping[str, str]
) -> dict[str, Any]:
    extra = spec.pod_template
    labels = {**(extra.labels or {}), **track_labels(hd.name, track)}
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.metrics_port),
        "prometheus.io/path": spec.metrics.path,
        **(extra.annotations or {}),
    }
    if config_hashes:
        annotations[ANNOTATION_CONFIG_HASH] = config_hash(config_hashes)
    return {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": pod_spec(hd, spec, track),
    }


def pod_spec(hd: HarnessRef, spec: HarnessDeploymentSpec, track: Track) -> dict[str, Any]:
    extra = spec.pod_template
    account = service_account(spec)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": account is not None,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "containers": [container(spec)],
        "volumes": _volumes(hd, spec),
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(hd.name, track)},
            }
        ],
    }
    optional: dict[str, Any] = {
        "serviceAccountName": account,
        "runtimeClassName": extra.runtime_class_name,
        "priorityClassName": extra.priority_class_name,
        "nodeSelector": extra.node_selector,
        "tolerations": extra.tolerations,
        "affinity": extra.affinity,
        "imagePullSecrets": [{"name": n} for n in extra.image_pull_secrets or []] or None,
    }
    pod |= {k: v for k, v in optional.items() if v is not None}
    if spec.shape is Shape.CRON:
        # A run is one attempt: its failure is an outcome to judge, not to retry.
        pod["restartPolicy"] = "Never"
    return pod


def container(spec: HarnessDeploymentSpec) -> dict[str, Any]:
    """The harness container."""
    ports = [{"name": HTTP_PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}]
    if spec.metrics_port != spec.port:
        ports.append(
            {"name": METRICS_PORT_NAME, "containerPort": spec.metrics_port, "protocol": "TCP"}
        )
    body: dict[str, Any] = {"name": APP_CONTAINER, "image": spec.image}
    optional: dict[str, Any] = {
        "imagePullPolicy": spec.image_pull_policy and str(spec.image_pull_policy),
        "command": spec.command,
        "args": spec.args,
        "env": [*model_env(spec), *worker_env(spec), *(e.to_k8s() for e in spec.env or [])] or None,
        "envFrom": [e.to_k8s() for e in spec.env_from] if spec.env_from else None,
    }
    body |= {k: v for k, v in optional.items() if v is not None}
    body |= {
        "ports": ports,
        "resources": resources(spec),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": _volume_mounts(spec),
    }
    if spec.shape is Shape.CRON:
        # A run is not served: no readiness to wait for, no endpoints to leave, and a
        # liveness probe would kill a run that does not listen.
        return body
    body |= {
        "livenessProbe": _probe(spec.probes.liveness),
        "readinessProbe": _probe(spec.probes.readiness),
    }
    if spec.probes.startup is not None:
        body["startupProbe"] = _probe(spec.probes.startup)
    if spec.pre_stop_delay_seconds > 0:
        body["lifecycle"] = {"preStop": {"sleep": {"seconds": spec.pre_stop_delay_seconds}}}
    return body


WORKER_CONCURRENCY_ENV: Final = "HARNESS_MAX_CONCURRENCY"


def worker_env(spec: HarnessDeploymentSpec) -> list[dict[str, Any]]:
    """A worker's per-pod concurrency limit."""
    if spec.worker is None:
        return []
    return [{"name": WORKER_CONCURRENCY_ENV, "value": str(spec.worker.concurrency)}]


def resources(spec: HarnessDeploymentSpec) -> dict[str, Any]:
    """The container's resources, with a default request for cpu and memory when neither
    requests nor limits mention them (a default request above a user's limit would be
    invalid; a limit alone already implies an equal request)."""
    requests = dict(spec.resources.requests or {})
    limits = dict(spec.resources.limits or {})
    for name, quantity in DEFAULT_REQUESTS.items():
        if name not in requests and name not in limits:
            requests[name] = quantity
    out: dict[str, Any] = {"requests": requests}
    if limits:
        out["limits"] = limits
    return out


def _probe(probe: HttpProbe) -> dict[str, Any]:
    return {
        "httpGet": {"path": probe.path, "port": HTTP_PORT_NAME},
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
    }


def _user_mounts_tmp(spec: HarnessDeploymentSpec) -> bool:
    return any(m.mount_path.rstrip("/") == TMP_PATH for m in spec.pod_template.volume_mounts or [])


def _volumes(hd: HarnessRef, spec: HarnessDeploymentSpec) -> list[dict[str, Any]]:
    user = [v.to_k8s() for v in spec.pod_template.volumes or []]
    volumes = [*model_volumes(spec, hd.name), *user]
    if _user_mounts_tmp(spec):
        return volumes
    return [{"name": RESERVED_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}, *volumes]


def _volume_mounts(spec: HarnessDeploymentSpec) -> list[dict[str, Any]]:
    mounts = [*model_mounts(spec), *(m.to_k8s() for m in spec.pod_template.volume_mounts or [])]
    if _user_mounts_tmp(spec):
        return mounts
    return [{"name": RESERVED_VOLUME, "mountPath": TMP_PATH}, *mounts]

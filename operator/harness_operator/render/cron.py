"""The CronJobs of a cron harness (`shape: cron`): `<name>-stable`, and `<name>-canary`,
which runs the new revision beside stable on the same schedule while a release judges it and
is suspended otherwise (like the canary Deployment at zero replicas: kept, so that the runs
of a rolled-back revision, their pods and logs, stay to be looked at within its history).

Runs never overlap within a track (`concurrencyPolicy: Forbid`: an agent run that outlasts
its interval must not be doubled), a run is one pod that is not retried (`backoffLimit: 0`,
`restartPolicy: Never`: a failed agent run is an outcome to judge, and a retry would spend
again), and a budget stop that scales to zero suspends both schedules.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from harness_operator import GROUP
from harness_operator.api import HarnessDeploymentSpec
from harness_operator.naming import Track, track_labels, track_name
from harness_operator.render.meta import k8s_object, object_meta
from harness_operator.render.revision import short_hash
from harness_operator.render.state import HarnessRef, K8sObject, ReleaseState
from harness_operator.render.workload import pod_template

CRONJOB_API_VERSION: Final = "batch/v1"
RUN_NOW_ANNOTATION: Final = f"{GROUP}/run-now"
MAX_CRONJOB_NAME: Final = 52
"""The CronJob controller appends an 11-character suffix to its Jobs' names."""


def render_cronjobs(
    hd: HarnessRef, spec: HarnessDeploymentSpec, state: ReleaseState
) -> list[K8sObject]:
    """Both tracks' CronJobs; the canary's is suspended unless a release needs its runs."""
    return [render_cronjob(hd, spec, state, track) for track in Track]


def render_cronjob(
    hd: HarnessRef, spec: HarnessDeploymentSpec, state: ReleaseState, track: Track
) -> K8sObject:
    track_spec = state.stable_spec if track is Track.STABLE else state.canary_spec
    hashes = state.stable_hashes if track is Track.STABLE else state.config_hashes
    template = pod_template(hd, track_spec, track, hashes, state.revision_aliases)
    cron = spec.cron_settings
    job: dict[str, Any] = {"backoffLimit": 0, "template": template}
    if cron.run_timeout_seconds is not None:
        job["activeDeadlineSeconds"] = cron.run_timeout_seconds
    body: dict[str, Any] = {
        "schedule": spec.schedule,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": cron.starting_deadline_seconds,
        "successfulJobsHistoryLimit": cron.successful_runs_history,
        "failedJobsHistoryLimit": cron.failed_runs_history,
        "suspend": state.scaled_to_zero or (track is Track.CANARY and not state.canary_active),
        "jobTemplate": {"metadata": {"labels": dict(template["metadata"]["labels"])}, "spec": job},
    }
    if cron.time_zone is not None:
        body["timeZone"] = cron.time_zone
    return k8s_object(
        CRONJOB_API_VERSION,
        "CronJob",
        object_meta(hd, track_name(hd.name, track), track_labels(hd.name, track)),
        body,
    )


def cron_name_problem(name: str) -> str | None:
    """Why a cron harness cannot be called `name` (None when it can)."""
    longest = track_name(name, Track.CANARY)
    if len(longest) <= MAX_CRONJOB_NAME:
        return None
    return (
        f"name {name!r} is too long for shape cron: the CronJob {longest!r} must be at most"
        f" {MAX_CRONJOB_NAME} characters (its Jobs get an 11-character suffix), so the name"
        f" at most {MAX_CRONJOB_NAME - len('-canary')}"
    )


def manual_job(cronjob: K8sObject, request: str) -> K8sObject:
    """A Job of `cronjob` started by hand (`harness.dev/run-now=<request>`), as `kubectl
    create job --from=cronjob/...` makes it: the jobTemplate, owned by the CronJob. Its name
    is the CronJob's plus a hash of the request (at most 63 characters, like the
    controller's own), so the same request never starts two runs."""
    meta = cronjob["metadata"]
    template = cronjob["spec"]["jobTemplate"]
    suffix = short_hash({"cronjob": meta["name"], "request": request})[:9]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{meta['name']}-m{suffix}",
            "namespace": meta["namespace"],
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "annotations": {
                "cronjob.kubernetes.io/instantiate": "manual",
                RUN_NOW_ANNOTATION: request,
            },
            "ownerReferences": [
                {
                    "apiVersion": CRONJOB_API_VERSION,
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": copy.deepcopy(template["spec"]),
    }

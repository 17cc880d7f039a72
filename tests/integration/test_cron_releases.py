"""Cron-shaped harnesses on the real data path: CronJobs the real CronJob and Job controllers
run, whose pods run the reference harness in containers (run mode: a few agent tasks
against the fake model API, then a run report in the termination message). A release runs
the new revision on a canary CronJob beside stable; its runs decide: a good revision is
promoted after its runs (one of them on the schedule), a costlier one and a failing one are
rolled back, and stable keeps its schedule throughout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client

from fakeapi import FakeModelAPI, ModelBehaviour
from podrunner import PodRunner
from scenarios import Harnesses, model_key
from testbed import OperatorProcess, epoch, eventually
from unit.test_cron_shape import INVALID as INVALID_CRONS

pytestmark = pytest.mark.usefixtures("crds")

KEY = "sk-test-cron-7c1e90"
IMAGE = "localhost/harness-app:1.0"
SONNET, OPUS, FAILING = "claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5"
EVERY_MINUTE, NEVER_SOON = "* * * * *", "0 0 1 1 *"


def cron_spec(api: FakeModelAPI, schedule: str, model: str = SONNET) -> dict[str, Any]:
    return {
        "image": IMAGE,
        "shape": "cron",
        "schedule": schedule,
        "cron": {"canaryRuns": 2, "runTimeoutSeconds": 120},
        "env": [{"name": "HARNESS_RUN_TASKS", "value": "2"}],
        "model": {
            "provider": "anthropic",
            "name": model,
            "baseURL": api.url,
            "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
        },
    }


@pytest.fixture
def cron_rig(
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    harness_image: str,
    pod_runner: Callable[[dict[str, str]], PodRunner],
    core: client.CoreV1Api,
    namespace: str,
) -> PodRunner:
    model_key(fake_api, core, namespace, KEY)
    fake_api.set_model(SONNET, ModelBehaviour(output_tokens=100, tool_turns=1))
    # Opus costs 5/25 USD per million tokens against Sonnet's 3/15, and says twice as much.
    fake_api.set_model(OPUS, ModelBehaviour(output_tokens=200, tool_turns=1))
    fake_api.set_model(FAILING, ModelBehaviour(error_rate=1.0, error_status=500))
    return pod_runner({IMAGE: harness_image})


def status(harness: Harnesses) -> dict[str, Any]:
    result: dict[str, Any] = harness.get("nightly").get("status") or {}
    return result


def jobs(batch: client.BatchV1Api, namespace: str) -> list[client.V1Job]:
    found: list[client.V1Job] = batch.list_namespaced_job(
        namespace, label_selector="harness.dev/name=nightly"
    ).items
    return found


def finished(job: client.V1Job) -> str | None:
    for condition in job.status.conditions or []:
        if condition.status == "True" and condition.type in ("Complete", "Failed"):
            return str(condition.type)
    return None


def run_now(harness: Harnesses, value: str) -> None:
    harness.custom.patch_namespaced_custom_object(
        "harness.dev",
        "v1alpha1",
        harness.namespace,
        "harnessdeployments",
        "nightly",
        {"metadata": {"annotations": {"harness.dev/run-now": value}}},
    )


def manual(job: client.V1Job) -> bool:
    return (job.metadata.annotations or {}).get("cronjob.kubernetes.io/instantiate") == "manual"


def started(job: client.V1Job) -> float:
    moment: datetime = job.status.start_time or job.metadata.creation_timestamp
    return moment.timestamp()


def stable_run_finished(harness: Harnesses, batch: client.BatchV1Api, namespace: str) -> None:
    """A finished stable run with a report: the baseline a release compares with."""
    run_now(harness, "baseline")
    eventually(
        lambda: any(
            finished(j) == "Complete" and j.metadata.labels["harness.dev/track"] == "stable"
            for j in jobs(batch, namespace)
        ),
        timeout=90,
        what="a stable run to complete",
    )


def test_a_good_revision_runs_on_the_schedule_beside_stable_and_is_promoted(
    harness: Harnesses,
    cron_rig: PodRunner,
    fake_api: FakeModelAPI,
    batch: client.BatchV1Api,
    namespace: str,
) -> None:
    spec = cron_spec(fake_api, EVERY_MINUTE)
    harness.create("nightly", spec)
    harness.wait_ready("nightly")
    stable_run_finished(harness, batch, namespace)
    before = status(harness)["stableRevision"]

    spec["env"].append({"name": "HARNESS_RUN_PROMPT", "value": "summarise the night's PRs"})
    harness.patch_spec("nightly", {"env": spec["env"]})
    eventually(
        lambda: status(harness).get("stage") == "Analysing",
        timeout=30,
        what="the canary CronJob judging runs",
    )
    new = status(harness)["canaryRevision"]
    release_started = epoch(status(harness)["releaseStartedAt"])
    run_now(harness, "first")  # one run now; the next comes on the schedule

    final = eventually(
        lambda: (
            (s := status(harness)).get("phase") == "Ready" and s.get("stableRevision") == new and s
        ),
        timeout=180,
        what="the promotion",
    )

    assert before != new
    ours = jobs(batch, namespace)
    canary_runs = [j for j in ours if j.metadata.labels["harness.dev/track"] == "canary"]
    assert any(manual(j) for j in canary_runs), "the run-now run"
    assert any(not manual(j) for j in canary_runs), "a run on the canary's schedule"
    assert all(finished(j) == "Complete" for j in canary_runs)
    scheduled_stable = [
        j
        for j in ours
        if j.metadata.labels["harness.dev/track"] == "stable"
        and not manual(j)
        and started(j) >= release_started - 1
    ]
    assert scheduled_stable, "stable kept its schedule during the release"
    assert final["lastAnalysis"]["outcome"] == "Pass"
    cost = next(r for r in final["lastAnalysis"]["results"] if r["name"] == "cost-per-run")
    assert cost["stableValue"] > 0
    assert cost["value"] > 0
    # Stable's CronJob now runs the new revision; the canary's is suspended until the next.
    cronjobs = {c.metadata.name: c for c in batch.list_namespaced_cron_job(namespace).items}
    assert set(cronjobs) == {"nightly-stable", "nightly-canary"}
    labels = cronjobs["nightly-stable"].spec.job_template.spec.template.metadata.labels
    assert labels["harness.dev/revision"] == new
    assert cronjobs["nightly-canary"].spec.suspend is True
    assert not cronjobs["nightly-stable"].spec.suspend


def test_a_costlier_revision_and_a_failing_one_are_rolled_back(
    harness: Harnesses,
    cron_rig: PodRunner,
    fake_api: FakeModelAPI,
    batch: client.BatchV1Api,
    namespace: str,
) -> None:
    harness.create("nightly", cron_spec(fake_api, NEVER_SOON))
    harness.wait_ready("nightly")
    stable_run_finished(harness, batch, namespace)
    stable = status(harness)["stableRevision"]

    # A model change that doubles the output and costs more per token.
    harness.patch_spec("nightly", {"model": cron_spec(fake_api, NEVER_SOON, OPUS)["model"]})
    eventually(lambda: status(harness).get("stage") == "Analysing", timeout=30, what="judging")
    run_now(harness, "opus-1")
    eventually(
        lambda: status(harness).get("lastAnalysis", {}).get("results", [{}])[0].get("value") == 1.0,
        timeout=90,
        what="the first canary run",
    )
    assert status(harness)["phase"] == "Progressing", "one run of two: it waits"
    run_now(harness, "opus-2")
    rolled = eventually(
        lambda: (s := status(harness)).get("phase") == "RolledBack" and s,
        timeout=90,
        what="the rollback",
    )
    assert rolled["rollback"]["reason"] == "RunsFailed"
    assert rolled["rollback"]["check"] == "cost-per-run"
    assert rolled["rollback"]["value"] > 1.25 * next(
        r["stableValue"] for r in rolled["lastAnalysis"]["results"] if r["name"] == "cost-per-run"
    )
    assert rolled["stableRevision"] == stable
    eventually(
        lambda: batch.read_namespaced_cron_job("nightly-canary", namespace).spec.suspend,
        timeout=30,
        what="the canary CronJob to be suspended",
    )

    # A model whose every call fails: the first failed run rolls it back at once.
    harness.patch_spec("nightly", {"model": cron_spec(fake_api, NEVER_SOON, FAILING)["model"]})
    eventually(
        lambda: (
            status(harness).get("stage") == "Analysing"
            and status(harness)["canaryRevision"] != rolled["canaryRevision"]
        ),
        timeout=30,
        what="the next release judging",
    )
    run_now(harness, "failing-1")
    again = eventually(
        lambda: (
            (s := status(harness)).get("phase") == "RolledBack"
            and s["rollback"]["revision"] != rolled["rollback"]["revision"]
            and s
        ),
        timeout=90,
        what="the second rollback",
    )
    assert again["rollback"]["check"] == "failed-runs"
    # The failed run stays, with its pod, to be looked at.
    failed = [j for j in jobs(batch, namespace) if finished(j) == "Failed"]
    assert [j.metadata.labels["harness.dev/revision"] for j in failed] == [
        again["rollback"]["revision"]
    ]
    events = [e["reason"] for e in harness.events("nightly")]
    assert {"RunStarted", "CanaryRuns", "RolledBack"} <= set(events)


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize(
    ("extra", "message"), [pytest.param(e, m, id=i) for i, e, m in INVALID_CRONS]
)
def test_the_apiserver_refuses_invalid_cron_specs_naming_the_field(
    harness: Harnesses, extra: dict[str, Any], message: str
) -> None:
    base = {"image": IMAGE, "shape": "cron", "schedule": "@hourly", "cron": {}}
    raw = {k: v for k, v in {**base, **extra}.items() if v is not None}
    err = harness.try_create("bad", raw)
    assert err is not None, "refused at admission"
    assert err.status == 422
    body = json.loads(err.body)["message"]
    assert message.split(" (")[0] in body or message in body, body


@pytest.mark.usefixtures("operator")
def test_the_shape_cannot_change_to_or_from_cron(harness: Harnesses) -> None:
    harness.create("svc", {"image": IMAGE})
    err = None
    try:
        harness.patch_spec("svc", {"shape": "cron", "schedule": "@hourly"})
    except client.ApiException as caught:
        err = caught
    assert err is not None
    assert err.status == 422
    assert "spec.shape cannot change to or from cron" in json.loads(err.body)["message"]

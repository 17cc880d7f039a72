"""Cron-shaped harnesses, without a cluster: the CronJobs rendered for each track, how runs
are read from Jobs and their pods' run reports, how a release is judged by its runs, and a
release driven tick by tick from the first deploy to promotion or rollback."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from harness_operator.analysis.outcome import Outcome, Round
from harness_operator.analysis.runs import Run, RunReport, judge_runs, runs_of
from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.budget import StopAction
from harness_operator.api.shape import CronSpec
from harness_operator.api.status import HarnessDeploymentStatus, Phase, Stage
from harness_operator.render import ReleaseState, render, revision
from harness_operator.render.cron import cron_name_problem, manual_job
from harness_operator.rollout import Inputs, Plan, WorkloadState, advance
from harness_operator.rollout.controls import CONTROL_RUN_NOW
from harness_operator.rollout.machine import REASON_RUNS_FAILED
from unit.render_helpers import HD, find

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CRON: dict[str, Any] = {
    "image": "ghcr.io/acme/nightly:1.0",
    "shape": "cron",
    "schedule": "*/10 * * * *",
    "cron": {"canaryRuns": 2, "runTimeoutSeconds": 1800, "timeZone": "Europe/Berlin"},
}


def cron(**extra: Any) -> HarnessDeploymentSpec:
    return HarnessDeploymentSpec.model_validate({**CRON, **extra})


# --- what is rendered -------------------------------------------------------------------


def test_a_cron_harness_is_two_cronjobs_the_canarys_suspended_at_rest() -> None:
    spec = cron()
    desired = render(HD, spec, ReleaseState.at_rest(spec))

    assert [(o["kind"], o["metadata"]["name"]) for o in desired.objects] == [
        ("CronJob", "pr-reviewer-stable"),
        ("CronJob", "pr-reviewer-canary"),
    ]
    assert desired.absent == []
    assert find(desired.objects, "CronJob", "pr-reviewer-canary")["spec"]["suspend"] is True
    body = desired.objects[0]["spec"]
    assert body["schedule"] == "*/10 * * * *"
    assert body["timeZone"] == "Europe/Berlin"
    assert body["concurrencyPolicy"] == "Forbid", "an agent run is never doubled"
    assert (body["successfulJobsHistoryLimit"], body["failedJobsHistoryLimit"]) == (3, 3)
    assert body["startingDeadlineSeconds"] == 300
    assert body["suspend"] is False
    job = body["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0, "a failed run is an outcome, not retried"
    assert job["activeDeadlineSeconds"] == 1800
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    for served in ("livenessProbe", "readinessProbe", "startupProbe", "lifecycle"):
        assert served not in container, f"a run is not served: no {served}"
    labels = body["jobTemplate"]["metadata"]["labels"]
    assert labels == job["template"]["metadata"]["labels"]
    assert labels["harness.dev/revision"] == revision(spec, {})
    assert labels["harness.dev/track"] == "stable"


def test_a_release_adds_the_canary_cronjob_on_the_same_schedule() -> None:
    old, new = cron(), cron(image="ghcr.io/acme/nightly:2.0")
    state = ReleaseState(stable_spec=old, canary_spec=new, canary_replicas=1)
    desired = render(HD, new, state)

    stable = find(desired.objects, "CronJob", "pr-reviewer-stable")
    canary = find(desired.objects, "CronJob", "pr-reviewer-canary")
    assert canary["spec"]["suspend"] is False, "it runs beside stable"
    assert canary["spec"]["schedule"] == stable["spec"]["schedule"]
    template = canary["spec"]["jobTemplate"]["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "ghcr.io/acme/nightly:2.0"
    assert template["metadata"]["labels"]["harness.dev/revision"] == revision(new, {})
    assert stable["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "ghcr.io/acme/nightly:1.0"
    )


def test_a_budget_stop_suspends_the_schedules() -> None:
    spec = cron()
    state = ReleaseState(stable_spec=spec, canary_spec=spec, stop_spending=StopAction.SCALE_TO_ZERO)
    desired = render(HD, spec, state)
    assert find(desired.objects, "CronJob", "pr-reviewer-stable")["spec"]["suspend"] is True


def test_a_service_never_deletes_cronjobs_it_never_had() -> None:
    spec = HarnessDeploymentSpec.model_validate({"image": "x:1"})
    desired = render(HD, spec, ReleaseState.at_rest(spec))
    assert not [k for k in desired.absent if k.kind == "CronJob"]


def test_names_too_long_for_a_cronjob_are_refused_with_the_limit() -> None:
    assert cron_name_problem("a" * 45) is None
    problem = cron_name_problem("a" * 46)
    assert problem is not None
    assert "at most 52" in problem
    assert "at most 45" in problem


def test_a_manual_run_is_a_job_of_the_cronjob_named_after_the_request() -> None:
    spec = cron()
    cronjob = render(HD, spec, ReleaseState.at_rest(spec)).objects[0]
    cronjob["metadata"]["uid"] = "cj-uid"
    cronjob["metadata"]["name"] = "x" * 52  # the longest a CronJob may be called

    job = manual_job(cronjob, "2026-03-01T12:00")
    again = manual_job(cronjob, "2026-03-01T12:00")
    other = manual_job(cronjob, "second")

    assert job == again, "a retried pass starts no second run"
    assert job["metadata"]["name"] != other["metadata"]["name"]
    assert len(job["metadata"]["name"]) <= 63
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "x" * 52,
            "uid": "cj-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["spec"] == cronjob["spec"]["jobTemplate"]["spec"]
    assert job["metadata"]["labels"]["harness.dev/track"] == "stable"


# --- what is refused --------------------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("no schedule", {"schedule": None}, "spec.schedule is required for shape cron"),
    ("four fields", {"schedule": "* * * *"}, "schedule"),
    ("a TZ prefix", {"schedule": "TZ=UTC 0 * * * *"}, "schedule"),
    ("autoscaled runs", {"autoscaling": {"maxReplicas": 3}}, "spec.autoscaling does not apply"),
    (
        "prometheus checks",
        {"analysis": {"checks": [{"name": "e", "builtin": "errorRate", "max": 0.1}]}},
        "spec.analysis.checks and spec.analysis.templates do not apply to shape cron",
    ),
    (
        "all runs may fail",
        {"cron": {"canaryRuns": 2, "maxFailedRuns": 2}},
        "cron.maxFailedRuns must be less than cron.canaryRuns",
    ),
    ("schedule on a service", {"shape": "service", "cron": None}, "spec.schedule applies only"),
    ("cron section on a worker", {"shape": "worker", "schedule": None}, "spec.cron applies only"),
]


@pytest.mark.parametrize(("extra", "message"), [pytest.param(e, m, id=i) for i, e, m in INVALID])
def test_invalid_cron_specs_name_the_field(extra: dict[str, Any], message: str) -> None:
    raw = {k: v for k, v in {**CRON, **extra}.items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        HarnessDeploymentSpec.model_validate(raw)
    assert message in str(caught.value)


# --- runs, from Jobs and pods ------------------------------------------------------------


def job(
    name: str, revision_: str, track: str, started: str, condition: str | None
) -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True"}] if condition else []
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": started,
            "labels": {"harness.dev/revision": revision_, "harness.dev/track": track},
        },
        "status": {"startTime": started, "conditions": conditions},
    }


def pod(
    job_name: str, message: str | None, created: str = "2026-03-01T12:00:01Z"
) -> dict[str, Any]:
    terminated = {"exitCode": 0} | ({"message": message} if message is not None else {})
    return {
        "metadata": {
            "creationTimestamp": created,
            "labels": {"batch.kubernetes.io/job-name": job_name},
        },
        "status": {
            "containerStatuses": [
                {"name": "sidecar", "state": {"terminated": {"message": "{}"}}},
                {"name": "harness", "state": {"terminated": terminated}},
            ]
        },
    }


def test_runs_are_read_from_jobs_and_their_pods_reports() -> None:
    report = {"costUsd": 0.42, "outputTokens": 1200, "inputTokens": 3000, "tasks": 3, "failed": 0}
    jobs = [
        job("n-2", "r2", "canary", "2026-03-01T12:10:00Z", None),
        job("n-1", "r1", "stable", "2026-03-01T12:00:00Z", "Complete"),
        job("n-3", "r2", "canary", "2026-03-01T12:05:00Z", "Failed"),
        {"metadata": {"name": "not-ours", "labels": {}}, "status": {}},
    ]
    pods = [
        pod("n-1", "not json at all"),
        pod("n-1", json.dumps(report), created="2026-03-01T12:00:09Z"),  # the retry's pod
        pod("n-3", "panic: out of memory"),
    ]

    runs = runs_of(jobs, pods)

    assert [(r.name, r.track, r.revision, r.succeeded) for r in runs] == [
        ("n-1", "stable", "r1", True),
        ("n-3", "canary", "r2", False),
        ("n-2", "canary", "r2", None),
    ]
    assert runs[0].report == RunReport(
        cost_usd=0.42, output_tokens=1200, input_tokens=3000, tasks=3, failed=0
    )
    assert runs[1].report is None, "a crash message is no report"


@pytest.mark.parametrize(
    "message",
    ['{"costUsd": -1}', '{"costUsd": "1.0"}', '{"costUsd": NaN}', "[1, 2]", '{"costUsd": true}'],
)
def test_report_values_that_are_not_amounts_are_left_out(message: str) -> None:
    report = RunReport.parse(message)
    assert report is None or report.cost_usd is None


# --- judging runs ------------------------------------------------------------------------

SINCE = T0


def run(
    name: str,
    revision_: str,
    minutes: int,
    succeeded: bool | None = True,
    cost: float | None = 1.0,
    tokens: float | None = 1000,
    track: str | None = None,
) -> Run:
    report = RunReport(cost_usd=cost, output_tokens=tokens) if cost or tokens else None
    return Run(
        name=name,
        track=track or ("stable" if revision_ == "old" else "canary"),
        revision=revision_,
        started=SINCE + timedelta(minutes=minutes),
        succeeded=succeeded,
        report=report,
    )


def judge(runs: list[Run], **cron_: Any) -> Round:
    return judge_runs(
        runs,
        canary_revision="new",
        stable_revision="old",
        since=SINCE,
        cron=CronSpec.model_validate({"canaryRuns": 2, **cron_}),
        now=SINCE + timedelta(hours=1),
    )


def outcomes(round_: Round) -> dict[str, Outcome]:
    return {r.name: r.outcome for r in round_.results}


BASELINE = [run("s1", "old", -30), run("s2", "old", -20)]


def test_two_good_runs_at_stables_cost_pass() -> None:
    judged = judge([*BASELINE, run("c1", "new", 10, cost=1.1), run("c2", "new", 20, cost=1.2)])
    assert judged.outcome is Outcome.PASS
    cost = judged.result("cost-per-run")
    assert cost is not None
    assert (cost.value, cost.stable_value, cost.max) == (pytest.approx(1.15), 1.0, 1.25)


def test_fewer_finished_runs_than_needed_hold() -> None:
    judged = judge([*BASELINE, run("c1", "new", 10), run("c2", "new", 20, succeeded=None)])
    assert judged.outcome is Outcome.INCONCLUSIVE
    assert outcomes(judged)["finished-runs"] is Outcome.INCONCLUSIVE
    finished = judged.result("finished-runs")
    assert finished is not None
    assert "1 of 2 runs of revision new finished (1 running)" in finished.message


def test_one_failed_run_fails_at_once() -> None:
    judged = judge([*BASELINE, run("c1", "new", 10, succeeded=False)])
    assert judged.outcome is Outcome.FAIL
    assert outcomes(judged)["failed-runs"] is Outcome.FAIL


def test_failed_runs_within_the_allowance_do_not_fail() -> None:
    runs = [
        *BASELINE,
        run("c1", "new", 10, succeeded=False),
        *(run(f"c{i}", "new", 10 + i) for i in (2, 3)),
    ]
    assert judge(runs, canaryRuns=3, maxFailedRuns=1).outcome is Outcome.PASS


def test_doubled_cost_per_run_fails() -> None:
    judged = judge([*BASELINE, run("c1", "new", 10, cost=2.0), run("c2", "new", 20, cost=2.1)])
    assert outcomes(judged)["cost-per-run"] is Outcome.FAIL
    assert outcomes(judged)["output-tokens-per-run"] is Outcome.PASS
    assert judged.outcome is Outcome.FAIL


def test_more_output_tokens_fail_on_their_own_ratio() -> None:
    judged = judge(
        [*BASELINE, run("c1", "new", 10, tokens=1600), run("c2", "new", 20, tokens=1600)]
    )
    assert outcomes(judged)["output-tokens-per-run"] is Outcome.FAIL
    assert (
        judge(
            [*BASELINE, run("c1", "new", 10, tokens=1600), run("c2", "new", 20, tokens=1600)],
            maxOutputTokensRatio=0,
        ).outcome
        is Outcome.PASS
    ), "0 turns the check off"


def test_without_a_stable_baseline_cost_cannot_be_judged_and_holds() -> None:
    judged = judge([run("c1", "new", 10), run("c2", "new", 20)])
    assert outcomes(judged)["cost-per-run"] is Outcome.INCONCLUSIVE
    assert judged.outcome is Outcome.INCONCLUSIVE


def test_without_reports_on_either_track_success_alone_decides() -> None:
    quiet = [
        run(n, r, m, cost=None, tokens=None)
        for n, r, m in (("s1", "old", -5), ("c1", "new", 1), ("c2", "new", 2))
    ]
    assert judge(quiet).outcome is Outcome.PASS


def test_a_revision_that_stops_reporting_fails() -> None:
    judged = judge(
        [
            *BASELINE,
            run("c1", "new", 1, cost=None, tokens=None),
            run("c2", "new", 2, cost=None, tokens=None),
        ]
    )
    assert outcomes(judged)["cost-per-run"] is Outcome.FAIL


def test_only_this_releases_runs_count() -> None:
    earlier = run("c0", "new", -60, succeeded=False)  # an earlier release of the same revision
    judged = judge([*BASELINE, earlier, run("c1", "new", 10), run("c2", "new", 20)])
    assert judged.outcome is Outcome.PASS
    stable_with_new = run("p1", "new", 5, succeeded=False, track="stable")
    assert (
        judge([*BASELINE, stable_with_new, run("c1", "new", 10), run("c2", "new", 20)]).outcome
        is Outcome.PASS
    )


# --- a release, tick by tick -------------------------------------------------------------


def cronjob(spec: HarnessDeploymentSpec) -> WorkloadState:
    return WorkloadState(
        exists=True, desired=1, updated=1, available=1, ready=True, revision=revision(spec, {})
    )


class CronRelease:
    """A cron harness driven one tick at a time: the CronJobs exist as soon as a plan asks
    for them; runs are handed in as the controller would judge them."""

    def __init__(self) -> None:
        self.now = T0
        self.spec = cron()
        self.status = HarnessDeploymentStatus()
        self.stable_spec = self.spec
        self.canary: HarnessDeploymentSpec | None = None
        self.runs: list[Run] = []
        self.controls: dict[str, str] = {}
        self.plans: list[Plan] = []

    def tick(self, seconds: float = 5) -> Plan:
        self.now += timedelta(seconds=seconds)
        inputs = Inputs(
            now=self.now,
            spec=self.spec,
            revision=revision(self.spec, {}),
            config_hashes={},
            status=self.status,
            stable=cronjob(self.stable_spec),
            canary=cronjob(self.canary) if self.canary is not None else WorkloadState(),
            controls=dict(self.controls),
        )
        plan = advance(inputs)
        if plan.judge_runs:
            judged = judge_runs(
                self.runs,
                canary_revision=str(plan.status.canary_revision),
                stable_revision=str(plan.status.stable_revision),
                since=plan.status.release_started_at or self.now,
                cron=self.spec.cron_settings,
                now=self.now,
            )
            plan = advance(replace(inputs, analysis=judged))
        # What the controller then applies: the CronJobs the state asks for.
        self.stable_spec = plan.state.stable_spec
        self.canary = plan.state.canary_spec if plan.state.canary_active else None
        for key in plan.consumed:
            self.controls.pop(key, None)
        self.status = HarnessDeploymentStatus.model_validate(
            json.loads(json.dumps(plan.status.to_k8s()))
        )
        self.plans.append(plan)
        return plan

    def finished_run(self, name: str, **kw: Any) -> None:
        self.runs.append(
            Run(
                name=name,
                track=kw.pop("track", "canary"),
                revision=kw.pop("revision", str(self.status.canary_revision)),
                started=self.now,
                succeeded=kw.pop("succeeded", True),
                report=RunReport(cost_usd=kw.pop("cost", 1.0), output_tokens=1000),
            )
        )

    def reasons(self) -> list[str]:
        return [n.reason for p in self.plans for n in p.notes]


@pytest.fixture
def at_rest() -> CronRelease:
    release = CronRelease()
    release.tick()
    assert release.status.phase is Phase.READY
    release.finished_run("stable-1", track="stable", revision=str(release.status.stable_revision))
    return release


def test_a_good_revision_is_judged_by_its_runs_and_promoted(at_rest: CronRelease) -> None:
    release = at_rest
    release.spec = cron(image="ghcr.io/acme/nightly:2.0")
    new = revision(release.spec, {})

    plan = release.tick()
    assert (release.status.phase, release.status.stage) == (
        Phase.PROGRESSING,
        Stage.WAITING_FOR_CANARY,
    )
    assert plan.state.canary_active, "the canary CronJob is asked for"
    plan = release.tick()
    assert release.status.stage is Stage.ANALYSING
    assert plan.judge_runs
    assert "CanaryRuns" in release.reasons()

    release.finished_run("canary-1")
    release.tick()
    assert release.status.phase is Phase.PROGRESSING, "one of two runs: the release waits"
    assert release.status.last_analysis is not None
    assert "1 of 2 runs" in (release.status.message or "")

    release.finished_run("canary-2", cost=1.2)
    plan = release.tick()
    assert release.status.phase is Phase.PROMOTING
    assert plan.state.stable_spec.image.endswith(":2.0")
    release.tick()
    assert release.status.phase is Phase.FINALISING
    release.tick()
    assert release.status.phase is Phase.READY
    assert release.status.stable_revision == new
    assert not release.plans[-1].state.canary_active, "the canary CronJob is suspended"


def test_a_failing_run_rolls_back_at_once(at_rest: CronRelease) -> None:
    release = at_rest
    release.spec = cron(image="ghcr.io/acme/nightly:bad")
    release.tick()
    release.tick()
    release.finished_run("canary-1", succeeded=False)

    plan = release.tick()

    assert release.status.phase is Phase.ROLLED_BACK
    assert release.status.rollback is not None
    assert release.status.rollback.reason == REASON_RUNS_FAILED
    assert release.status.rollback.check == "failed-runs"
    assert not plan.state.canary_active, "the canary CronJob is suspended"
    assert plan.state.stable_spec.image.endswith(":1.0")


def test_a_costlier_revision_rolls_back_once_its_runs_are_in(at_rest: CronRelease) -> None:
    release = at_rest
    release.spec = cron(image="ghcr.io/acme/nightly:verbose")
    release.tick()
    release.tick()
    release.finished_run("canary-1", cost=2.0)
    release.tick()
    assert release.status.phase is Phase.PROGRESSING
    release.finished_run("canary-2", cost=2.2)

    release.tick()

    assert release.status.phase is Phase.ROLLED_BACK
    assert release.status.rollback is not None
    assert release.status.rollback.check == "cost-per-run"
    assert release.status.rollback.value == pytest.approx(2.1)


def test_run_now_starts_a_canary_run_while_judging_else_a_stable_one(at_rest: CronRelease) -> None:
    release = at_rest
    release.controls[CONTROL_RUN_NOW] = "1"
    assert release.tick().run_now == ("stable", "1")
    assert CONTROL_RUN_NOW not in release.controls, "consumed"

    release.spec = cron(image="ghcr.io/acme/nightly:2.0")
    release.tick()
    release.tick()
    release.controls[CONTROL_RUN_NOW] = "2"
    assert release.tick().run_now == ("canary", "2")
    assert release.tick().run_now is None, "each value starts one run"


def test_run_now_on_a_service_is_ignored_with_a_reason() -> None:
    spec = HarnessDeploymentSpec.model_validate({"image": "x:1"})
    plan = advance(
        Inputs(
            now=T0,
            spec=spec,
            revision=revision(spec, {}),
            config_hashes={},
            status=HarnessDeploymentStatus(),
            stable=WorkloadState(),
            canary=WorkloadState(),
            controls={CONTROL_RUN_NOW: "x"},
        )
    )
    assert plan.run_now is None
    assert any(
        n.reason == "ControlIgnored" and "only a cron harness" in n.message for n in plan.notes
    )

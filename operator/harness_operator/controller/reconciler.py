"""One reconcile pass of a HarnessDeployment: observe, decide, apply what drifted, report.

It reads through the kube adapter, checks that the spec can be realised *before* writing
anything (so a bad spec never leaves half its objects behind, and never disturbs what
already runs), asks the release engine what each track should run and where traffic goes,
evaluates the analysis checks when the engine asks for them, applies only the objects whose
live copy lacks what we render (routing first when traffic moves toward stable), removes
objects that must no longer exist, and returns the status, Events and control annotations
to clear for the caller (the kopf daemon) to publish. Synchronous: the daemon runs it in a
worker thread.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from harness_operator import naming
from harness_operator.analysis import (
    AnalysisConfigError,
    Round,
    Target,
    evaluate,
    provider_for,
    resolve_checks,
)
from harness_operator.analysis.providers import SecretReader, secret_data
from harness_operator.analysis.runs import judge_runs, runs_of
from harness_operator.analysis.service import QueryService
from harness_operator.api import (
    API_VERSION,
    HarnessDeploymentSpec,
    HarnessDeploymentStatus,
    Strategy,
)
from harness_operator.api.analysis import AnalysisSpec, HarnessChecks
from harness_operator.api.model import ModelSpec
from harness_operator.api.resource import TEMPLATE_KIND
from harness_operator.api.shape import Shape
from harness_operator.api.status import RELEASE_PHASES, Phase, Stage
from harness_operator.budget.ladder import SpendReading
from harness_operator.budget.spend import read_spend
from harness_operator.controller.status import (
    CONDITION_CREDENTIALS_VALID,
    CONDITION_DEGRADED,
    CONDITION_MODEL_PINNED,
    Observation,
    Problem,
    status_patch,
    transitions,
    with_conditions,
)
from harness_operator.kube import FIELD_MANAGER, Kube, Obj, drift
from harness_operator.kube.client import REPLICAS_MANAGER, refusal
from harness_operator.preflight import (
    CheckRequest,
    PreflightOutcome,
    PreflightService,
    Verdict,
    unverified,
)
from harness_operator.preflight.calls import dated_snapshot
from harness_operator.render import (
    ConfigRef,
    HarnessRef,
    ObjectKey,
    pod_template,
    referenced_configs,
    render,
    revision,
)
from harness_operator.render.configs import content_hash
from harness_operator.render.cron import cron_name_problem, manual_job
from harness_operator.render.model import FILE_CREDENTIAL
from harness_operator.rollout import CONTROL_KEYS, Inputs, Note, Plan, WorkloadState, advance
from harness_operator.rollout.adopt import adopt_revisions
from harness_operator.rollout.controls import CONTROL_LIFT_BUDGET
from harness_operator.traffic import IstioRouter, Router

log = logging.getLogger(__name__)
T = TypeVar("T")

ROUTING_KINDS = frozenset({"VirtualService", "DestinationRule"})


@dataclass
class Outcome:
    """What one pass did and wants published."""

    writes: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    status: Obj | None = None
    """Merge patch for .status, None when unchanged."""
    full_status: Obj = field(default_factory=dict)
    consumed: tuple[str, ...] = ()
    """Control annotations to remove once the status is saved."""
    next_tick: float | None = None
    """Seconds until the release needs the next pass (None: at rest, resync is enough)."""


def owner_uid(obj: Obj) -> str | None:
    """UID of the object's controller, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owns_replicas(obj: Obj) -> bool:
    """Whether our main field manager owns a Deployment's `spec.replicas`."""
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            return "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    return False


def _describe(key: ObjectKey) -> str:
    return f"{key.kind} {key.name}"


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        clock: Callable[[], datetime] | None = None,
        prometheus_url: str | None = None,
        router: Router | None = None,
        preflight: PreflightService | None = None,
        queries: QueryService | None = None,
    ) -> None:
        self.kube = kube
        self.clock = clock or (lambda: datetime.now(UTC))
        self.prometheus_url = prometheus_url
        self.router: Router = router or IstioRouter()
        self.preflight = preflight
        # Without a service, queries run in the pass (tests and tools).
        self.queries = queries or QueryService(executor=None)

    # -- one pass ------------------------------------------------------------------------

    def reconcile(self, body: Obj) -> Outcome:
        now = self.clock()
        hd = HarnessRef.from_body(body)
        current: Obj = dict(body.get("status") or {})
        outcome = Outcome()

        problems = [Problem("InvalidName", p) for p in naming.name_problems(hd.name)]
        try:
            spec: HarnessDeploymentSpec | None = HarnessDeploymentSpec.model_validate(
                body.get("spec") or {}
            )
        except ValidationError as err:
            problems.append(Problem("InvalidSpec", _validation_message(err)))
            spec = None

        hashes: dict[str, str] = {}
        missing: list[str] = []
        configs: dict[str, Obj] = {}
        credentials: Verdict | None = None
        if spec is not None:
            recorded = (body.get("status") or {}).get("stableConfigHashes") or {}
            hashes, missing, configs = self._resolve_configs(hd, referenced_configs(spec), recorded)
            problems += [
                Problem("MissingReference", f"{ref} does not exist in {hd.namespace}")
                for ref in missing
            ]
            if spec.model is not None:
                credentials = self._credentials(hd, spec.model, configs)
            if self._needs_prometheus(spec, hashes, current):
                problems.append(
                    Problem(
                        "NoPrometheus",
                        "the release's analysis needs Prometheus, and neither"
                        " spec.analysis.prometheus.address nor the operator's default"
                        " (HARNESS_PROMETHEUS_URL; Helm value prometheus.address) is set: the"
                        " release is held with no traffic to the canary",
                    )
                )

        too_long = cron_name_problem(hd.name) if spec and spec.shape is Shape.CRON else None
        if too_long is not None:
            problems.append(Problem("InvalidName", too_long))

        release: Obj = dict(current)
        stable: Obj | None
        if spec is None or any(p.reason == "InvalidName" for p in problems):
            stable = self.kube.get(
                "apps/v1", "Deployment", hd.namespace, naming.stable_name(hd.name)
            )
        else:
            stable, release = self._release(
                hd, spec, hashes, credentials, body, problems, outcome, now
            )

        seen = Observation(
            generation=hd.generation,
            problems=tuple(problems),
            missing_configs=tuple(missing),
            stable=_workload(spec, stable),
            credentials=credentials,
            model_alias_of=(
                dated_snapshot(spec.model.name) if spec is not None and spec.model else None
            ),
        )
        wanted = with_conditions(seen, release, current, now)
        outcome.full_status = wanted
        outcome.status = status_patch(current, wanted)
        outcome.notes += _transition_notes(current, wanted)
        if credentials is not None and credentials.retry_in is not None and credentials.holds:
            # Come back when the inconclusive check may be retried.
            wake = max(credentials.retry_in, 0.5)
            outcome.next_tick = min(outcome.next_tick or wake, wake)
        return outcome

    def _release(
        self,
        hd: HarnessRef,
        spec: HarnessDeploymentSpec,
        hashes: dict[str, str],
        credentials: Verdict | None,
        body: Obj,
        problems: list[Problem],
        outcome: Outcome,
        now: datetime,
    ) -> tuple[Obj | None, Obj]:
        status = HarnessDeploymentStatus.model_validate(body.get("status") or {})
        if spec.shape is Shape.CRON:
            stable_key, canary_key = (
                ObjectKey("batch/v1", "CronJob", hd.namespace, naming.track_name(hd.name, t))
                for t in naming.Track
            )
        else:
            stable_key = ObjectKey(
                "apps/v1", "Deployment", hd.namespace, naming.stable_name(hd.name)
            )
            canary_key = ObjectKey(
                "apps/v1", "Deployment", hd.namespace, naming.canary_name(hd.name)
            )
        live: dict[ObjectKey, Obj | None] = {
            key: self.kube.get(key.api_version, key.kind, key.namespace, key.name)
            for key in (stable_key, canary_key)
        }
        annotations = body.get("metadata", {}).get("annotations") or {}
        computed = revision(spec, hashes)
        adoption = adopt_revisions(
            status,
            revision=computed,
            stable_revision=_stable_revision(status),
            canary_runs_spec=_runs_spec(_owned(live[canary_key], hd.uid), status, hd, spec, hashes),
        )
        status = adoption.status
        outcome.notes += adoption.notes
        current_revision = adoption.resolve(computed)
        inputs = Inputs(
            now=now,
            spec=spec,
            revision=current_revision,
            config_hashes=hashes,
            status=status,
            stable=_workload(spec, _owned(live[stable_key], hd.uid)),
            canary=_workload(spec, _owned(live[canary_key], hd.uid)),
            analysis=None,
            controls={k: str(v) for k, v in annotations.items() if k in CONTROL_KEYS},
            credentials=credentials,
            spend=self._read_spend(hd, spec, status, annotations, now),
        )
        lift = inputs.controls.get(CONTROL_LIFT_BUDGET)
        done = (status.consumed_controls or {}).get(CONTROL_LIFT_BUDGET)
        if inputs.spend is None and spec.budget is not None and lift not in (None, done):
            # A new lift makes spend due: no reading means it is still being read, and the
            # lift stays on the object (not consumed) until the reading is in.
            controls = {k: v for k, v in inputs.controls.items() if k != CONTROL_LIFT_BUDGET}
            inputs = replace(inputs, controls=controls)
        plan = advance(inputs)
        if (
            plan.analyse
            and spec.analysis_settings is not None
            and not problems
            and self._analysis_due(status, spec, now)
            and (round_ := self._analyse(hd, spec, plan, now)) is not None
        ):
            plan = advance(replace(inputs, analysis=round_))
        elif plan.judge_runs and not problems and self._analysis_due(status, spec, now):
            plan = advance(replace(inputs, analysis=self._judge_runs(hd, spec, plan, now)))

        desired = render(hd, spec, plan.state, self.router)
        for obj in desired.objects:
            key = ObjectKey.of(obj)
            if key not in live:
                live[key] = self.kube.get(key.api_version, key.kind, key.namespace, key.name)
            found = live[key]
            if found is not None and owner_uid(found) != hd.uid:
                problems.append(
                    Problem(
                        "Conflict",
                        f"{_describe(key)} already exists and is not owned by this"
                        " HarnessDeployment; rename or delete it",
                    )
                )
        objects = desired.objects
        if not problems and self._must_dry_run(body, live, objects):
            problems += self._dry_run(objects, live)
        if problems:
            # Hold everything as it is: the release does not move while we cannot apply.
            return live.get(stable_key), dict(body.get("status") or {})

        if plan.route_first:
            objects = sorted(objects, key=lambda o: o["kind"] not in ROUTING_KINDS)
        minimum = spec.autoscaling.min_replicas if spec.autoscaling else spec.replicas
        # Replica counts to hand to an HPA: stable never below the HPA minimum, and an
        # active canary at the size the engine chose (an HPA never scales up from 0).
        handover = {
            stable_key: max(int(minimum or 1), 1),
            canary_key: max(plan.state.canary_replicas, 1),
        }
        try:
            self._apply(objects, live, outcome, handover)
        except RefusedError as err:
            # The dry run passed and the write did not (a race, or an admission webhook
            # that only acts on real writes): the same hold, from the next pass on.
            problems.append(err.problem)
            return live.get(stable_key), dict(body.get("status") or {})
        self._remove(desired.absent, hd.uid, outcome)
        if plan.run_now is not None:
            self._run_now(hd, plan.run_now, live, outcome)
        if (
            spec.shape is Shape.CRON
            and plan.status.phase is Phase.ROLLED_BACK
            and status.phase is not Phase.ROLLED_BACK
        ):
            self._stop_canary_runs(hd, outcome)
        outcome.notes += plan.notes
        outcome.consumed = tuple(plan.consumed)
        if plan.status.phase in RELEASE_PHASES or plan.analyse:
            # Wake at the check cadence, and exactly when the current step may end, so
            # a release takes its configured schedule and not a tick more per step.
            outcome.next_tick = min(
                _check_interval(spec), _seconds_to_step_end(plan.status, spec, now)
            )
        if spec.budget is not None:
            # Read spend at its own cadence, at rest too.
            budget_tick = spec.budget.check_interval_seconds
            outcome.next_tick = min(outcome.next_tick or budget_tick, budget_tick)
        return live.get(stable_key), plan.status.to_k8s()

    # -- budget --------------------------------------------------------------------------

    def _read_spend(
        self,
        hd: HarnessRef,
        spec: HarnessDeploymentSpec,
        status: HarnessDeploymentStatus,
        annotations: Obj,
        now: datetime,
    ) -> SpendReading | None:
        """Spend from Prometheus when the budget is due for a check (or a lift asks)."""
        budget = spec.budget
        if budget is None:
            return None
        stored = status.budget
        due = (
            stored is None
            or (now - stored.checked_at).total_seconds() >= 0.9 * budget.check_interval_seconds
            or CONTROL_LIFT_BUDGET in annotations
            or any(now >= w.resets_at for w in stored.windows)
        )
        if not due:
            return None
        # `spec.analysis` even without checks: its `prometheus` says where spend is.
        analysis = spec.analysis or AnalysisSpec(harness_checks=HarnessChecks())
        try:
            provider = provider_for(analysis, self.prometheus_url, self._secrets(hd))
        except AnalysisConfigError as err:
            return SpendReading(now, (), None, 0.0, problem=str(err))
        pricing = spec.model.pricing if spec.model is not None else None
        return self._query(
            hd,
            ("spend",),
            provider.address,
            lambda: read_spend(provider, hd.namespace, hd.name, budget, pricing, now),
        )

    # -- analysis ------------------------------------------------------------------------

    def _secrets(self, hd: HarnessRef) -> SecretReader:
        """Reads Secrets of the HarnessDeployment's namespace by name, for Prometheus's
        credentials and CA bundle (in memory only, each analysis round)."""
        return lambda name: secret_data(self.kube.get("v1", "Secret", hd.namespace, name))

    def _needs_prometheus(
        self, spec: HarnessDeploymentSpec, hashes: dict[str, str], current: Obj
    ) -> bool:
        """Whether a release is due (or running) whose analysis has no Prometheus to ask.
        Failing it would roll back a healthy release after traffic reached the canary;
        holding it before any traffic is what a missing setting deserves."""
        analysis = spec.analysis_settings
        if analysis is None or self.prometheus_url or spec.shape is Shape.CRON:
            return False
        if analysis.prometheus is not None and analysis.prometheus.address:
            return False
        status = HarnessDeploymentStatus.from_k8s(current)
        if status.in_release:
            return True
        computed = revision(spec, hashes)
        in_use = (status.revision_aliases or {}).get(computed, computed)
        return status.stable_revision is not None and in_use != status.stable_revision

    def _analysis_due(
        self, status: HarnessDeploymentStatus, spec: HarnessDeploymentSpec, now: datetime
    ) -> bool:
        last = status.last_analysis.time if status.last_analysis is not None else None
        if last is None:
            return True
        # A little slack so that a pass that wakes exactly on the interval is not skipped.
        return (now - last).total_seconds() >= 0.9 * _check_interval(spec)

    def _analyse(
        self, hd: HarnessRef, spec: HarnessDeploymentSpec, plan: Plan, now: datetime
    ) -> Round | None:
        """A round of the checks, or None while it runs (see `analysis.service`: the pass
        never waits long for Prometheus; the HD is woken when the round is in)."""
        analysis = spec.analysis_settings
        assert analysis is not None
        target = Target(
            name=hd.name,
            namespace=hd.namespace,
            stable_revision=str(plan.status.stable_revision or ""),
            canary_revision=str(plan.status.canary_revision or ""),
            pricing=spec.model.pricing if spec.model else None,
        )
        templates = {}
        for ref in analysis.templates or []:
            found = self.kube.get(API_VERSION, TEMPLATE_KIND, hd.namespace, ref.name)
            if found is not None:
                templates[ref.name] = found.get("spec") or {}
        try:
            checks = resolve_checks(analysis, templates, harness=spec.harness_checks_apply)
            provider = provider_for(analysis, self.prometheus_url, self._secrets(hd))
        except AnalysisConfigError as err:
            return Round.config_error(now, str(err))
        # One round per pair of revisions at a time; it is stamped when it started, so it
        # never completes a step that began after its queries were sent.
        return self._query(
            hd,
            ("round", target.stable_revision, target.canary_revision),
            provider.address,
            lambda: evaluate(checks, analysis, target, provider, now),
        )

    def _query(
        self, hd: HarnessRef, what: tuple[str, ...], address: str, job: Callable[[], T]
    ) -> T | None:
        """`job`'s result, or None while it runs; the HD is woken when it is in."""
        owner = (hd.namespace, hd.name)
        return self.queries.ask((*owner, *what), address, job, owner=owner, waiter=owner)

    # -- cron runs -----------------------------------------------------------------------

    def _judge_runs(
        self, hd: HarnessRef, spec: HarnessDeploymentSpec, plan: Plan, now: datetime
    ) -> Round:
        """The new revision's runs (Jobs, with their pods' run reports) against stable's."""
        selector = f"{naming.LABEL_NAME}={hd.name}"
        jobs = [
            j
            for j in self.kube.list("batch/v1", "Job", hd.namespace, selector)
            if _owned_by_ours(j, hd)
        ]
        pods = self.kube.list("v1", "Pod", hd.namespace, selector) if jobs else []
        status = plan.status
        return judge_runs(
            runs_of(jobs, pods),
            canary_revision=str(status.canary_revision or ""),
            stable_revision=str(status.stable_revision or ""),
            since=status.release_started_at or now,
            cron=spec.cron_settings,
            now=now,
        )

    def _run_now(
        self,
        hd: HarnessRef,
        request: tuple[str, str],
        live: dict[ObjectKey, Obj | None],
        outcome: Outcome,
    ) -> None:
        """One run of a track's CronJob now, as `kubectl create job --from=cronjob/...`
        does: a Job from its jobTemplate, owned by the CronJob (so it shares its history
        and goes with it). Named after the request, so a retried pass creates nothing new."""
        track, value = request
        name = naming.track_name(hd.name, naming.Track(track))
        key = ObjectKey("batch/v1", "CronJob", hd.namespace, name)
        cronjob = live.get(key)
        if cronjob is None:
            outcome.notes.append(
                Note("Warning", "RunNotStarted", f"no {track} CronJob to start a run from")
            )
            return
        job = manual_job(cronjob, value)
        self.kube.apply(job)
        name = job["metadata"]["name"]
        outcome.writes.append(f"Job {name}")
        outcome.notes.append(Note("Normal", "RunStarted", f"started Job {name} ({track})"))

    def _stop_canary_runs(self, hd: HarnessRef, outcome: Outcome) -> None:
        """A rolled-back revision stops spending at once: its runs still going are deleted
        (their pods get their grace period); finished ones stay to be looked at."""
        selector = f"{naming.LABEL_NAME}={hd.name},{naming.LABEL_TRACK}={naming.Track.CANARY}"
        for job in self.kube.list("batch/v1", "Job", hd.namespace, selector):
            if not _owned_by_ours(job, hd) or _job_finished(job):
                continue
            name = job["metadata"]["name"]
            if self.kube.delete("batch/v1", "Job", hd.namespace, name):
                outcome.writes.append(f"delete Job {name}")
                outcome.notes.append(
                    Note("Normal", "RunStopped", f"stopped run {name} of the rolled-back revision")
                )

    # -- writes --------------------------------------------------------------------------

    def _resolve_configs(
        self, hd: HarnessRef, refs: list[ConfigRef], recorded: Obj
    ) -> tuple[dict[str, str], list[str], dict[str, Obj]]:
        hashes: dict[str, str] = {}
        missing: list[str] = []
        found: dict[str, Obj] = {}
        for ref in refs:
            obj = self.kube.get("v1", ref.kind, hd.namespace, ref.name)
            if obj is not None:
                hashes[ref.key] = content_hash(ref.kind, obj, recorded.get(ref.key))
                found[ref.key] = obj
            elif not ref.optional:
                missing.append(ref.key)
        return hashes, missing, found

    # -- preflight -----------------------------------------------------------------------

    def _credentials(self, hd: HarnessRef, model: ModelSpec, configs: dict[str, Obj]) -> Verdict:
        """The preflight verdict for the spec's model and credential (never blocks: a check
        that is not cached runs in the background and wakes this HD when it answers)."""
        if not model.preflight.enabled:
            return unverified("Disabled", "spec.model.preflight.enabled is false")
        ref = model.secret_ref
        if ref is None:
            return unverified(
                "WorkloadIdentity",
                "the pods use their workload identity, which the operator cannot act as;"
                " the credential is not verified before traffic",
            )
        secret = configs.get(f"Secret/{ref.name}")
        value = secret_value(secret, ref.key) if secret is not None else None
        if value is None:
            where = f"Secret {ref.name}" + (" has no key " + ref.key if secret else " is missing")
            return Verdict(
                PreflightOutcome.FAILED, "MissingCredential", f"{where} (spec.model.credentials)"
            )
        if model.provider not in FILE_CREDENTIAL and value != value.strip():
            return Verdict(
                PreflightOutcome.FAILED,
                "MalformedCredential",
                f"the value of Secret {ref.name} key {ref.key} has leading or trailing"
                " whitespace (a newline?); the pods would send it as it is",
            )
        if self.preflight is None:
            return unverified("NoPreflight", "this operator runs without preflight checks")
        return self.preflight.verdict(CheckRequest(model, value), (hd.namespace, hd.name))

    def _apply(
        self,
        objects: list[Obj],
        live: dict[ObjectKey, Obj | None],
        outcome: Outcome,
        handover: dict[ObjectKey, int],
    ) -> None:
        created: list[str] = []
        updated: list[str] = []
        for obj in objects:
            key = ObjectKey.of(obj)
            found = live.get(key)
            paths = ["(missing)"] if found is None else drift(obj, found)
            hpa_owned = key.kind == "Deployment" and "replicas" not in obj["spec"]
            minimum = handover.get(key, 1)
            if hpa_owned and found is not None and owns_replicas(found):
                # Hand the count over before we stop applying it, or it resets to 1.
                count = max(int(found["spec"].get("replicas", 0)), minimum)
                self._hand_over_replicas(obj, count)
                outcome.writes.append(f"{_describe(key)} (replicas hand-over)")
                paths = paths or [".spec.replicas (hand-over)"]
            if not paths:
                continue
            try:
                live[key] = self.kube.apply(obj)
            except ApiException as err:
                if (why := refusal(err)) is None:
                    raise
                raise RefusedError(Problem(APPLY_REFUSED, f"{_describe(key)}: {why}")) from err
            outcome.writes.append(_describe(key))
            if hpa_owned and found is None:
                # Start at the HPA's minimum instead of the Deployment default of 1.
                live[key] = self._hand_over_replicas(obj, minimum)
            if found is None:
                created.append(_describe(key))
            else:
                updated.append(f"{_describe(key)} ({', '.join(paths[:3])})")
        if created:
            outcome.notes.append(Note("Normal", "Created", "created " + ", ".join(created)))
        if updated:
            outcome.notes.append(Note("Normal", "Updated", "applied " + "; ".join(updated)))

    def _must_dry_run(
        self, body: Obj, live: dict[ObjectKey, Obj | None], objects: list[Obj]
    ) -> bool:
        """Whether to have the apiserver judge the object set before writing: after a spec
        change (what the user wrote reaches the objects), when an object is to be created,
        and while the last dry run was refused. Release steps, which change only what we
        compute, write at once."""
        status = body.get("status") or {}
        if status.get("observedGeneration") != body.get("metadata", {}).get("generation"):
            return True
        degraded: Obj = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Degraded"), {}
        )
        if degraded.get("status") == "True" and degraded.get("reason") == APPLY_REFUSED:
            return True
        return any(live.get(ObjectKey.of(obj)) is None for obj in objects)

    def _dry_run(self, objects: list[Obj], live: dict[ObjectKey, Obj | None]) -> list[Problem]:
        """Server-side dry runs of the objects that would be written: what the apiserver
        (validation, defaulting, admission) refuses, by object. Nothing is stored."""
        refused: list[Problem] = []
        for obj in objects:
            key = ObjectKey.of(obj)
            found = live.get(key)
            if found is not None and not drift(obj, found):
                continue
            try:
                self.kube.apply(obj, dry_run=True)
            except ApiException as err:
                if (why := refusal(err)) is None:
                    raise
                refused.append(Problem(APPLY_REFUSED, f"{_describe(key)}: {why}"))
        return refused

    def _hand_over_replicas(self, obj: Obj, replicas: int) -> Obj:
        meta = obj["metadata"]
        return self.kube.apply(
            {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "spec": {"replicas": replicas},
            },
            manager=REPLICAS_MANAGER,
        )

    def _remove(self, absent: list[ObjectKey], uid: str, outcome: Outcome) -> None:
        for key in absent:
            found = self.kube.ours_if_any(key.api_version, key.kind, key.namespace, key.name)
            if found is not None and owner_uid(found) == uid:
                self.kube.delete(key.api_version, key.kind, key.namespace, key.name)
                outcome.writes.append(f"delete {_describe(key)}")
                outcome.notes.append(Note("Normal", "Deleted", f"deleted {_describe(key)}"))


APPLY_REFUSED = "ApplyRefused"
"""Degraded reason: the apiserver refused a generated object (its message names the field)."""


class RefusedError(Exception):
    """A write the apiserver refused, as the problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def secret_value(secret: Obj, key: str) -> str | None:
    """A Secret key's value, decoded, in memory only (None when the key is absent)."""
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _stable_revision(status: HarnessDeploymentStatus) -> str | None:
    """The revision of the recorded stable spec, as this operator names it."""
    if status.stable_spec is None:
        return None
    try:
        stable = HarnessDeploymentSpec.model_validate(status.stable_spec)
    except ValidationError:
        return None
    return revision(stable, status.stable_config_hashes or {})


def _runs_spec(
    canary: Obj | None,
    status: HarnessDeploymentStatus,
    hd: HarnessRef,
    spec: HarnessDeploymentSpec,
    hashes: dict[str, str],
) -> bool:
    """Whether the live canary Deployment carries the stored canary (or rolled-back) id and
    already runs exactly `spec`'s pod template (see `rollout.adopt`)."""
    if canary is None:
        return False
    live = (canary.get("spec") or {}).get("template") or {}
    label = ((live.get("metadata") or {}).get("labels") or {}).get(naming.LABEL_REVISION)
    stored = {status.canary_revision, status.rollback.revision if status.rollback else None}
    if label is None or label not in stored:
        return False
    wanted = pod_template(hd, spec, naming.Track.CANARY, hashes)
    del wanted["metadata"]["labels"][naming.LABEL_REVISION]
    return not drift(wanted, live)


def _workload(spec: HarnessDeploymentSpec | None, obj: Obj | None) -> WorkloadState:
    """A track as the release engine sees it: its Deployment, or a cron harness's CronJob."""
    if spec is not None and spec.shape is Shape.CRON:
        return WorkloadState.from_cronjob(obj)
    return WorkloadState.from_deployment(obj)


def _owned_by_ours(job: Obj, hd: HarnessRef) -> bool:
    """A Job one of this HarnessDeployment's CronJobs created (its owner is named after a
    track); a user's Job that merely carries our label is not a run."""
    names = {naming.track_name(hd.name, t) for t in naming.Track}
    return any(
        ref.get("kind") == "CronJob" and ref.get("name") in names
        for ref in job.get("metadata", {}).get("ownerReferences") or []
    )


def _job_finished(job: Obj) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def _owned(obj: Obj | None, uid: str) -> Obj | None:
    return obj if obj is not None and owner_uid(obj) == uid else None


def _seconds_to_step_end(
    status: HarnessDeploymentStatus, spec: HarnessDeploymentSpec, now: datetime
) -> float:
    """Seconds until the current step (or mirroring, or test iteration) has held long
    enough; infinity when no timed stage is running."""
    started = status.step_started_at
    if started is None or status.stage not in (Stage.ANALYSING, Stage.MIRRORING):
        return float("inf")
    rollout = spec.rollout
    hold = rollout.interval_seconds
    if rollout.strategy is Strategy.CANARY and status.stage is Stage.ANALYSING:
        hold += rollout.step_pause_seconds(status.current_step or 0)
    remaining = hold - (now - started).total_seconds()
    return max(remaining, 0.05)


def _check_interval(spec: HarnessDeploymentSpec) -> float:
    if (analysis := spec.analysis_settings) is not None:
        return float(analysis.check_interval_seconds)
    return min(5.0, float(spec.rollout.interval_seconds))


def _transition_notes(current: Obj, wanted: Obj) -> list[Note]:
    notes = []
    for type_, cond in transitions(current, wanted):
        if type_ == CONDITION_DEGRADED and cond["status"] == "True":
            notes.append(Note("Warning", cond["reason"], cond["message"]))
        elif type_ == CONDITION_DEGRADED and cond["status"] == "False" and current:
            notes.append(Note("Normal", "Recovered", "the spec can be realised again"))
        elif type_ == "Ready" and cond["status"] == "True":
            notes.append(Note("Normal", "Ready", cond["message"]))
        elif type_ == CONDITION_CREDENTIALS_VALID and cond["status"] != "Unknown":
            kind = "Normal" if cond["status"] == "True" else "Warning"
            notes.append(Note(kind, cond["reason"], cond["message"]))
        elif type_ == CONDITION_MODEL_PINNED and cond["status"] == "False":
            notes.append(Note("Warning", cond["reason"], cond["message"]))
    return notes


def _validation_message(err: ValidationError) -> str:
    parts = []
    for error in err.errors()[:5]:
        where = "spec." + ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


__all__ = [
    "Note",
    "Outcome",
    "Reconciler",
    "content_hash",
    "owner_uid",
]

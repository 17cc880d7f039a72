"""The release state machine: `advance()` takes what the controller observed at one tick and
returns the plan for it. Pure: no I/O, no wall clock (`Inputs.now`), all progress in the
returned status, so the same inputs always give the same plan and a restarted operator
resumes exactly where it stopped.

Phases (see `HarnessDeploymentStatus.phase` and `.stage`)::

    Initializing → Ready → Progressing ⇄ Paused → Promoting → Finalising → Ready
                            │    ▲                    │
                            │    └ new revision: restart (from any release phase)
                            └──→ RolledBack ←─────────┘ failed checks, deadline, abort
                                 │  (holds until a new revision or harness.dev/retry)

A spec back at the stable revision cancels a release in flight (→ Ready).

Fail fast, promote slow: at every tick of a release in flight, before anything can move
forward, the engine checks for a new revision (restart), `harness.dev/abort`, the latest
analysis round (rollback at `failureLimit` failed rounds or `errorLimit` erroring rounds in
a row) and the canary's progress deadline. A step moves on only when it has been held for
`interval` (+ its `pause`) and the latest round since it started passed; an inconclusive or
missing round holds it. Without `spec.analysis`, steps move on time alone.

The machine does not touch the controller's fields (`observedGeneration`, `conditions`); the
controller sets those, and reports `Failed` itself when the spec cannot be realised.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from harness_operator.api.shape import Shape
from harness_operator.api.spec import HarnessDeploymentSpec, Strategy
from harness_operator.api.status import (
    BUDGET_LADDER,
    RELEASE_PHASES,
    BudgetStep,
    CheckOutcome,
    HarnessDeploymentStatus,
    Phase,
    RollbackRecord,
    Stage,
)
from harness_operator.budget.ladder import evaluate_ladder
from harness_operator.rollout.adopt import prune_aliases
from harness_operator.rollout.controls import (
    CONTROL_ABORT,
    CONTROL_LIFT_BUDGET,
    CONTROL_PAUSE,
    CONTROL_PROMOTE,
    CONTROL_RESUME,
    CONTROL_RETRY,
    CONTROL_RUN_NOW,
    is_full_promotion,
    read_controls,
)
from harness_operator.rollout.model import NORMAL, WARNING, Inputs, Note, Plan
from harness_operator.rollout.outcome import describe, plan_summary, release_state, toward_stable
from harness_operator.rollout.rounds import (
    REASON_ANALYSIS_ERRORS,
    REASON_ANALYSIS_FAILED,
    Limits,
    culprit,
    describe_check,
    record_of,
    tally,
)

REASON_ABORTED = "Aborted"
REASON_BUDGET = "BudgetExceeded"
REASON_PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
REASON_RUNS_FAILED = "RunsFailed"

ANALYSED_STAGES = frozenset({Stage.MIRRORING, Stage.ANALYSING})

# Fields that only mean something while a release is in flight; cleared at rest.
_IN_FLIGHT: dict[str, Any] = {
    "stage": None,
    "current_step": None,
    "iterations": None,
    "paused": None,
    "release_started_at": None,
    "step_started_at": None,
    "not_ready_since": None,
    "canary_weight": 0,
    "mirror_percent": None,
    "canary_match": None,
}


def advance(inputs: Inputs) -> Plan:
    """One tick of the release engine: the complete new status, what to render, and in
    which order to apply it."""
    return _Tick(inputs).run()


def should_analyse(status: HarnessDeploymentStatus, spec: HarnessDeploymentSpec) -> bool:
    """Whether the controller evaluates the analysis checks at a tick, given the stored
    status (the same value as the last `Plan.analyse`). A cron harness is judged by its
    runs instead (`should_judge_runs`)."""
    return (
        spec.shape is not Shape.CRON
        and spec.analysis_settings is not None
        and status.phase in (Phase.PROGRESSING, Phase.PAUSED)
        and status.stage in ANALYSED_STAGES
    )


def should_judge_runs(status: HarnessDeploymentStatus, spec: HarnessDeploymentSpec) -> bool:
    """Whether the controller judges a cron harness's runs at a tick (hands them in as
    `Inputs.analysis`): while the new revision runs beside stable."""
    return (
        spec.shape is Shape.CRON
        and status.phase in (Phase.PROGRESSING, Phase.PAUSED)
        and status.stage is Stage.ANALYSING
    )


def _model_of(spec: HarnessDeploymentSpec) -> str | None:
    return spec.model.describe() if spec.model is not None else None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Tick:
    """The working state of one `advance()` call: the status being built and the notes."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.now = _utc(inputs.now)
        self.spec = inputs.spec
        self.rollout = inputs.spec.rollout
        self.limits = Limits.of(inputs.spec)
        self.controls = read_controls(inputs.controls, inputs.status.consumed_controls)
        self.pending = dict(self.controls.pending)
        self.status = inputs.status.model_copy(
            update={"consumed_controls": dict(self.controls.record) or None}
        )
        self.notes: list[Note] = []

    # --- bookkeeping ------------------------------------------------------------------

    def set(self, **fields: Any) -> None:
        self.status = self.status.model_copy(update=fields)

    def clear(self, **fields: Any) -> None:
        """Leave the release fields at rest, then set `fields`."""
        self.set(**{**_IN_FLIGHT, **fields})

    def note(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.notes.append(Note(WARNING if warning else NORMAL, reason, message))

    def take(self, key: str) -> str | None:
        """The value of a pending control, which is thereby handled."""
        return self.pending.pop(key, None)

    def ignore(self, key: str, value: str, why: str) -> None:
        self.note("ControlIgnored", f"{key}={value!r} ignored: {why}")

    def elapsed(self, since: datetime | None) -> float:
        return 0.0 if since is None else (self.now - since).total_seconds()

    @property
    def revision(self) -> str:
        return self.inputs.revision

    @property
    def canary_revision(self) -> str:
        return self.status.canary_revision or self.revision

    # --- the tick ---------------------------------------------------------------------

    def run(self) -> Plan:
        before = self.inputs.status
        self.apply_budget()
        status = self.status
        if status.stable_revision is None or status.stable_spec is None:
            self.initializing()
        elif status.phase in (Phase.PROGRESSING, Phase.PAUSED):
            self.progressing()
        elif status.phase is Phase.PROMOTING:
            self.promoting()
        elif status.phase is Phase.FINALISING:
            self.finalising()
        elif status.phase is Phase.ROLLED_BACK:
            self.rolled_back()
        else:
            self.at_rest()
        run_now = self.run_now()
        for key, value in self.pending.items():
            self.ignore(key, value, f"nothing to {key.partition('/')[2]} in phase {self.phase}")
        if self.status.phase != before.phase:
            self.set(last_transition_time=self.now)
        self.set(message=describe(self.status, self.inputs, self.limits))
        self.set(revision_aliases=prune_aliases(self.status))
        state = release_state(self.status, self.inputs)
        self.set(
            stable_model=_model_of(state.stable_spec), canary_model=_model_of(state.canary_spec)
        )
        return Plan(
            status=self.status,
            state=state,
            route_first=toward_stable(before, self.status),
            analyse=should_analyse(self.status, self.spec),
            judge_runs=should_judge_runs(self.status, self.spec),
            run_now=run_now,
            notes=tuple(self.notes),
            consumed=self.controls.consumed,
        )

    @property
    def phase(self) -> str:
        return str(self.status.phase or Phase.INITIALIZING)

    # --- at rest ----------------------------------------------------------------------

    def initializing(self) -> None:
        """First deploy (or a status without a recorded stable spec): stable runs the spec
        as it is, without analysis; its revision becomes the stable one once it is ready."""
        self.clear()
        if self.inputs.stable.runs(self.revision) and not self.inputs.credentials_hold:
            self.set(
                phase=Phase.READY,
                stable_spec=self.spec.to_k8s(),
                stable_revision=self.revision,
                canary_revision=self.revision,
                stable_config_hashes=dict(self.inputs.config_hashes),
            )
        else:
            self.set(phase=Phase.INITIALIZING)

    def at_rest(self) -> None:
        if self.revision != self.status.stable_revision:
            if not self.budget_at(BudgetStep.CANARY_ABORTED):
                self.start_release()
                return
            # The budget holds new releases: stable serves on, its record stays.
            runs = self.inputs.stable.runs(self.status.stable_revision)
            self.clear(phase=Phase.READY if runs else Phase.DEGRADED)
            return
        # Same pod template; keep the record of the spec current (replicas, rollout, ...).
        self.clear(
            stable_spec=self.spec.to_k8s(),
            stable_config_hashes=dict(self.inputs.config_hashes),
            canary_revision=self.revision,
            phase=(Phase.READY if self.inputs.stable.runs(self.revision) else Phase.DEGRADED),
        )

    def rolled_back(self) -> None:
        """Stable serves everything until a new revision, `retry`, or the spec going back
        to the stable revision."""
        if self.revision == self.status.stable_revision:
            self.at_rest()
            return
        rolled = self.status.rollback.revision if self.status.rollback else None
        retry = self.take(CONTROL_RETRY)
        if retry is not None or self.revision != rolled:
            self.start_release(retried=retry is not None)
            return
        self.clear(phase=Phase.ROLLED_BACK)

    # --- a release --------------------------------------------------------------------

    def start_release(self, *, restarted_from: str | None = None, retried: bool = False) -> None:
        """Canary on the current spec, no traffic until its credential passed the preflight
        and it is ready."""
        self.clear(
            phase=Phase.PROGRESSING,
            stage=Stage.PREFLIGHT,
            canary_revision=self.revision,
            release_started_at=self.now,
            not_ready_since=self.now,
            failed_checks=0,
            error_checks=0,
            last_analysis=None,
            release_count=(self.status.release_count or 0) + 1,
        )
        if restarted_from is not None:
            self.note(
                "ReleaseRestarted",
                f"revision changed from {restarted_from} to {self.revision} during the"
                f" release: all traffic back on stable, releasing {self.revision} from the"
                " start",
            )
        else:
            again = " again (retry)" if retried else ""
            summary = plan_summary(self.spec, analysed=self.limits is not None)
            self.note(
                "ReleaseStarted",
                f"releasing revision {self.revision}{again} over stable revision"
                f" {self.status.stable_revision}: {summary}",
            )
        # Controls that came with the new revision apply at once (e.g. promote=full); the
        # observed canary and analysis predate this release, so nothing else is looked at.
        self.progressing(fresh=True)

    def new_revision(self) -> bool:
        """Handle a spec change during a release; True when it ended this tick's work."""
        if self.revision == self.canary_revision:
            return False
        if self.revision == self.status.stable_revision:
            self.note(
                "ReleaseCancelled",
                f"the spec is back at stable revision {self.revision}: release of"
                f" {self.canary_revision} cancelled",
            )
            self.at_rest()
        else:
            self.start_release(restarted_from=self.canary_revision)
        return True

    def progressing(self, *, fresh: bool = False) -> None:
        if not fresh and self.new_revision():
            return
        if self.status.stage not in (Stage.PREFLIGHT, Stage.WAITING_FOR_CANARY, *ANALYSED_STAGES):
            self.set(stage=Stage.WAITING_FOR_CANARY)  # e.g. a status from an older operator
        elif self.status.stage in ANALYSED_STAGES and self.status.step_started_at is None:
            self.set(step_started_at=self.now)
        abort = self.take(CONTROL_ABORT)
        if abort is not None:
            self.abort(abort)
            return
        if self.budget_at(BudgetStep.CANARY_ABORTED):
            budget = self.status.budget
            why = budget.reason if budget is not None else ""
            self.rollback(
                REASON_BUDGET, f"the spend budget reached {budget.step if budget else ''}: {why}"
            )
            return
        if self.status.stage is Stage.PREFLIGHT and self.preflight_holds():
            return
        if self.spec.shape is Shape.CRON:
            self.judging_runs(fresh=fresh)
            return
        if not fresh and (self.count_round() or self.canary_deadline()):
            return
        self.pause_or_resume()
        promote = self.take(CONTROL_PROMOTE)
        if promote is not None and is_full_promotion(promote):
            self.note("ManualPromotion", f"{CONTROL_PROMOTE}={promote!r}: skipping to promotion")
            self.begin_promotion()
            return
        if not fresh:
            self.step_forward(promote)
        if self.status.phase in (Phase.PROGRESSING, Phase.PAUSED):
            self.set(
                phase=Phase.PAUSED if self.status.paused else Phase.PROGRESSING,
                **self.progress_traffic(),
            )

    # --- budget -----------------------------------------------------------------------

    def apply_budget(self) -> None:
        """Bring `status.budget` up to date with this tick's spend reading (if any) and the
        lift annotation, and say when the ladder step changes."""
        budget = self.spec.budget
        lift = self.take(CONTROL_LIFT_BUDGET)
        if budget is None:
            self.set(budget=None)
            if lift is not None:
                self.ignore(CONTROL_LIFT_BUDGET, lift, "the spec has no budget")
            return
        reading = self.inputs.spend
        previous = self.status.budget
        if reading is None:
            if lift is not None:
                self.ignore(CONTROL_LIFT_BUDGET, lift, "spend has not been read yet")
            return
        current = evaluate_ladder(budget, reading, previous, lift=lift is not None)
        self.set(budget=current)
        before = previous.step if previous is not None else BudgetStep.WITHIN
        if current.step is before:
            return
        if current.step is BudgetStep.WITHIN:
            self.note("BudgetWithin", f"spend is back within the budget: {current.reason}")
        else:
            self.note(f"Budget{current.step}", f"spend budget: {current.reason}", warning=True)

    def budget_at(self, step: BudgetStep) -> bool:
        """Whether the budget ladder is at `step` or beyond."""
        budget = self.status.budget
        if budget is None or self.spec.budget is None:
            return False
        return BUDGET_LADDER.index(budget.step) >= BUDGET_LADDER.index(step)

    def preflight_holds(self) -> bool:
        """Keep the revision away from traffic (and without pods) while its credential is
        refused or not yet checked; move on to the canary once it passed (or no check
        applies). Fail closed: not even `promote=full` skips it."""
        if self.inputs.credentials_hold:
            promote = self.take(CONTROL_PROMOTE)
            if promote is not None:
                self.ignore(CONTROL_PROMOTE, promote, "the credential has not passed preflight")
            self.set(canary_weight=0, mirror_percent=0, canary_match=False)
            return True
        self.set(stage=Stage.WAITING_FOR_CANARY, not_ready_since=self.now)
        return False

    def count_round(self) -> bool:
        """Count a new analysis round; True when it rolled the release back."""
        analysis = self.inputs.analysis
        # Only rounds taken in an analysed stage count: while the canary starts it has no
        # traffic, so a round would judge an absence of data (the deadline covers that).
        if (
            analysis is None
            or self.limits is None
            or not should_analyse(self.inputs.status, self.spec)
        ):
            return False
        counted = tally(analysis, self.status, self.limits)
        if counted is None:
            return False
        self.set(
            last_analysis=counted.record,
            failed_checks=counted.failed_checks,
            error_checks=counted.error_checks,
        )
        check = culprit(counted.record)
        detail = describe_check(check) if check else "no check reported"
        if counted.breach == REASON_ANALYSIS_FAILED:
            self.rollback(
                counted.breach,
                f"{counted.failed_checks} failed analysis rounds (failureLimit"
                f" {self.limits.failure_limit}); {detail}",
            )
            return True
        if counted.breach == REASON_ANALYSIS_ERRORS:
            self.rollback(
                counted.breach,
                f"{counted.error_checks} analysis rounds in a row could not be evaluated"
                f" (errorLimit {self.limits.error_limit}); {detail}",
            )
            return True
        if counted.record.outcome is CheckOutcome.FAIL:
            self.note(
                "RoundFailed",
                f"analysis round failed ({counted.failed_checks} of"
                f" {self.limits.failure_limit} allowed): {detail}",
                warning=True,
            )
        elif counted.record.outcome is CheckOutcome.ERROR:
            self.note(
                "RoundError",
                f"analysis round could not be evaluated ({counted.error_checks} in a row,"
                f" {self.limits.error_limit} allowed): {detail}",
                warning=True,
            )
        return False

    def canary_deadline(self) -> bool:
        """Track the canary's readiness; True when it missed its deadline (rolled back)."""
        canary = self.inputs.canary
        if self.spec.shape is Shape.WORKER and self.inputs.stable.desired == 0:
            # KEDA scaled the workers to zero between bursts, and the canary's share with
            # them: nothing is late, the release waits for work.
            self.set(not_ready_since=None)
            return False
        if canary.serves(self.canary_revision):
            self.set(not_ready_since=None)
            return False
        since = self.status.not_ready_since or self.now
        self.set(not_ready_since=since)
        deadline = self.rollout.progress_deadline_seconds
        if canary.stuck(self.canary_revision):
            why = "the canary Deployment reports ProgressDeadlineExceeded"
        elif self.elapsed(since) >= deadline:
            why = (
                f"the canary was not ready within {deadline}s"
                f" ({canary.available}/{canary.desired} replicas available)"
            )
        else:
            return False
        self.note(REASON_PROGRESS_DEADLINE, f"revision {self.canary_revision}: {why}", warning=True)
        self.rollback(REASON_PROGRESS_DEADLINE, why)
        return True

    def pause_or_resume(self) -> None:
        pause, resume = self.take(CONTROL_PAUSE), self.take(CONTROL_RESUME)
        if resume is not None:
            if self.status.paused:
                self.set(paused=None)
                if self.status.stage in ANALYSED_STAGES:
                    # The step's wait starts over: what was analysed before the pause does
                    # not vouch for what comes after it.
                    self.set(step_started_at=self.now)
                self.note("Resumed", f"release of {self.canary_revision} resumed")
            else:
                self.ignore(CONTROL_RESUME, resume, "the release is not paused")
            if pause is not None:
                self.ignore(CONTROL_PAUSE, pause, f"{CONTROL_RESUME} came with it")
        elif pause is not None:
            if self.status.paused:
                self.ignore(CONTROL_PAUSE, pause, "the release is already paused")
            else:
                self.set(paused=True)
                self.note(
                    "Paused",
                    f"release of {self.canary_revision} paused at canary weight"
                    f" {self.status.canary_weight or 0}%; analysis and rollback keep running",
                )

    def step_forward(self, promote: str | None) -> None:
        """Move to the next stage when the current one is done (or skipped by hand)."""
        stage = self.status.stage
        ready = self.inputs.canary.serves(self.canary_revision)
        if stage is Stage.WAITING_FOR_CANARY or not ready:
            if promote is not None:
                why = (
                    "the canary has just become ready; its first step starts now"
                    if ready
                    else f"the canary is not ready; use {CONTROL_PROMOTE}=full to skip readiness"
                )
                self.ignore(CONTROL_PROMOTE, promote, why)
            if ready and not self.status.paused:
                self.begin_first_stage()
            return
        if promote is not None:
            self.note("ManualPromotion", f"{CONTROL_PROMOTE}={promote!r}: skipping this step")
        elif self.status.paused or self.budget_at(BudgetStep.PROMOTION_BLOCKED):
            return  # frozen at this step (by hand, or by the budget)
        if stage is Stage.MIRRORING:
            if promote is not None or self.step_done(self.rollout.interval_seconds):
                self.enter_step(0)
        elif self.rollout.strategy is Strategy.CANARY:
            step = self.step_index()
            hold = self.rollout.interval_seconds + self.rollout.step_pause_seconds(step)
            if promote is not None or self.step_done(hold):
                if step + 1 < len(self.rollout.weight_schedule()):
                    self.enter_step(step + 1)
                else:
                    self.begin_promotion()
        elif promote is not None:
            self.begin_promotion()
        elif self.step_done(self.rollout.interval_seconds):
            done = (self.status.iterations or 0) + 1
            total = self.rollout.iteration_count
            self.set(iterations=done, step_started_at=self.now)
            self.note("IterationCompleted", f"iteration {done}/{total} passed")
            if done >= total:
                self.begin_promotion()

    def step_done(self, hold: float) -> bool:
        """The current step was held long enough and, with analysis, the latest round since
        it started passed."""
        started = self.status.step_started_at
        if started is None or self.elapsed(started) < hold:
            return False
        if self.limits is None:
            return True
        last = self.status.last_analysis
        return last is not None and last.time > started and last.outcome is CheckOutcome.PASS

    def step_index(self) -> int:
        last = len(self.rollout.weight_schedule()) - 1
        return min(self.status.current_step or 0, last)

    def begin_first_stage(self) -> None:
        strategy = self.rollout.strategy
        if strategy is Strategy.CANARY and self.rollout.mirror_percent == 0:
            self.enter_step(0)
            return
        self.set(stage=Stage.MIRRORING if strategy is Strategy.CANARY else Stage.ANALYSING)
        self.set(step_started_at=self.now, not_ready_since=None)
        interval = self.rollout.interval
        if strategy is Strategy.CANARY:
            self.note(
                "Mirroring",
                f"mirroring {self.rollout.mirror_percent}% of requests to the canary for"
                f" {interval}",
            )
            return
        self.set(iterations=0)
        total = self.rollout.iteration_count
        what = (
            "A/B test: requests matching rollout.match go to the canary"
            if strategy is Strategy.AB_TEST
            else "blue/green test: no live traffic, the canary's own Service reaches it"
        )
        self.note("Testing", f"{what}; {total} iterations of {interval}")

    def enter_step(self, step: int) -> None:
        weights = self.rollout.weight_schedule()
        step = min(step, len(weights) - 1)
        self.set(
            stage=Stage.ANALYSING,
            current_step=step,
            step_started_at=self.now,
            not_ready_since=None,
        )
        self.note(
            "StepAdvanced", f"canary weight {weights[step]}% (step {step + 1}/{len(weights)})"
        )

    def progress_traffic(self) -> dict[str, Any]:
        """Traffic of a Progressing/Paused release, from its stage and the current rollout
        settings (so an edit of `rollout` applies at once)."""
        stage, strategy = self.status.stage, self.rollout.strategy
        weight, mirror, match = 0, 0, False
        if stage is Stage.MIRRORING:
            mirror = self.rollout.mirror_percent
        elif stage is Stage.ANALYSING and strategy is Strategy.CANARY:
            if self.status.current_step is None:  # the strategy was changed mid-release
                self.enter_step(0)
            weight = self.rollout.weight_schedule()[self.step_index()]
        elif stage is Stage.ANALYSING and strategy is Strategy.BLUE_GREEN:
            mirror = self.rollout.mirror_percent
        elif stage is Stage.ANALYSING:
            match = True
        if self.spec.routed and stage in ANALYSED_STAGES and self.inputs.canary.available == 0:
            # No pod could answer: traffic leaves the canary at once (routing goes first),
            # and the step starts over when it is back; its deadline still runs.
            before = self.inputs.status
            if before.canary_weight or before.mirror_percent or before.canary_match:
                self.note(
                    "CanaryUnavailable",
                    "the canary has no available pods: all traffic on stable until it has;"
                    " the step starts over then",
                    warning=True,
                )
            self.set(step_started_at=self.now)
            return {"canary_weight": 0, "mirror_percent": 0, "canary_match": False}
        before = self.inputs.status
        had_traffic = before.canary_weight or before.mirror_percent or before.canary_match
        gets_traffic = weight or mirror or match
        if (
            self.spec.routed
            and before.stage in ANALYSED_STAGES
            and gets_traffic
            and not had_traffic
        ):
            # Back from having no pods (or a step that had none): it starts now.
            self.set(step_started_at=self.now)
        return {"canary_weight": weight, "mirror_percent": mirror, "canary_match": match}

    # --- cron: the new revision's runs decide -------------------------------------------

    def judging_runs(self, *, fresh: bool) -> None:
        """A cron release: the canary CronJob runs the new revision beside stable; its runs
        (handed in as a round by the controller) roll it back at once when they fail, and
        promote it when the runs it needs have finished and compare well with stable's."""
        self.pause_or_resume()
        promote = self.take(CONTROL_PROMOTE)
        self.set(
            phase=Phase.PAUSED if self.status.paused else Phase.PROGRESSING,
            canary_weight=0,
            mirror_percent=0,
            canary_match=False,
        )
        if fresh:
            if promote is not None:
                self.ignore(CONTROL_PROMOTE, promote, "the canary CronJob is not created yet")
            return
        if self.status.stage is not Stage.ANALYSING:
            if not self.inputs.canary.serves(self.canary_revision):
                if promote is not None:
                    self.ignore(CONTROL_PROMOTE, promote, "the canary CronJob is not created yet")
                self.canary_deadline()
                return
            cron = self.spec.cron_settings
            self.set(stage=Stage.ANALYSING, step_started_at=self.now, not_ready_since=None)
            self.note(
                "CanaryRuns",
                f"revision {self.canary_revision} runs on the canary CronJob beside stable:"
                f" {cron.canary_runs} finished runs decide (annotate {CONTROL_RUN_NOW} to"
                " start one now)",
            )
        if self.judge_round():
            return
        if promote is not None:
            self.note("ManualPromotion", f"{CONTROL_PROMOTE}={promote!r}: promoting now")
            self.begin_promotion()
            return
        last = self.status.last_analysis
        passed = last is not None and last.outcome is CheckOutcome.PASS
        if passed and not self.status.paused and not self.budget_at(BudgetStep.PROMOTION_BLOCKED):
            self.begin_promotion()

    def judge_round(self) -> bool:
        """Take in the runs' latest judgement; True when it rolled the release back."""
        judged = self.inputs.analysis
        if judged is None or not should_judge_runs(self.inputs.status, self.spec):
            return False
        record = record_of(judged)
        stored = self.status.last_analysis
        if stored is None or stored.outcome != record.outcome or stored.results != record.results:
            self.set(last_analysis=record)  # only when it says something new: fewer writes
        if record.outcome is not CheckOutcome.FAIL:
            return False
        check = culprit(record)
        detail = describe_check(check) if check else "a run check failed"
        self.set(last_analysis=record)
        self.rollback(REASON_RUNS_FAILED, f"the new revision's runs: {detail}")
        return True

    def run_now(self) -> tuple[str, str] | None:
        """(track, value) of a `harness.dev/run-now` to start: the canary's while a release
        judges its runs, else stable's. Only cron harnesses have runs."""
        value = self.take(CONTROL_RUN_NOW)
        if value is None:
            return None
        if self.spec.shape is not Shape.CRON:
            self.ignore(CONTROL_RUN_NOW, value, "only a cron harness (spec.shape: cron) has runs")
            return None
        judging = self.status.phase in (Phase.PROGRESSING, Phase.PAUSED) and (
            self.status.stage is Stage.ANALYSING
        )
        if self.status.phase in RELEASE_PHASES and not judging:
            self.ignore(
                CONTROL_RUN_NOW, value, f"the canary CronJob is not judging runs ({self.phase})"
            )
            return None
        track = "canary" if judging else "stable"
        self.note("RunRequested", f"{CONTROL_RUN_NOW}={value!r}: starting a {track} run now")
        return track, value

    # --- promotion --------------------------------------------------------------------

    def begin_promotion(self) -> None:
        """Stable starts rolling out the canary's revision; traffic stays as it is, except
        that blue/green now switches all of it to the (ready) canary."""
        switch = self.rollout.strategy is Strategy.BLUE_GREEN and self.inputs.canary.serves(
            self.canary_revision
        )
        self.set(
            phase=Phase.PROMOTING,
            stage=Stage.WAITING_FOR_STABLE,
            paused=None,
            step_started_at=self.now,
            not_ready_since=self.now,
        )
        if switch:
            self.set(canary_weight=100, mirror_percent=0)
        self.note(
            "Promoting",
            f"promoting revision {self.canary_revision}: the stable track rolls it out"
            + ("; all traffic switched to the canary meanwhile" if switch else ""),
        )

    def promoting(self) -> None:
        if self.new_revision():
            return
        abort = self.take(CONTROL_ABORT)
        if abort is not None:
            self.abort(abort)
            return
        stable, canary = self.inputs.stable, self.inputs.canary
        if stable.runs(self.canary_revision):
            self.begin_finalising()
            return
        if self.status.stage is Stage.STABLE_STALLED:
            if canary.serves(self.canary_revision):
                self.set(canary_weight=100, mirror_percent=0, canary_match=False)
            return
        deadline = self.rollout.progress_deadline_seconds
        if stable.stuck(self.canary_revision):
            why = "the stable Deployment reports ProgressDeadlineExceeded"
        elif self.elapsed(self.status.not_ready_since or self.status.step_started_at) >= deadline:
            why = (
                f"the stable track was not ready within {deadline}s"
                f" ({stable.available}/{stable.desired} replicas available)"
            )
        else:
            return
        # Flagger's lesson (fluxcd/flagger#1898): do not send traffic back to a stable track
        # that is stuck mid-rollout; the canary runs the same revision, proven and sized
        # like stable, so it serves everything until stable is ready (or an abort).
        self.set(stage=Stage.STABLE_STALLED)
        if canary.serves(self.canary_revision):
            self.set(canary_weight=100, mirror_percent=0, canary_match=False)
            action = "all traffic goes to the canary until stable is ready"
        else:
            action = "the canary is not ready either: traffic stays as it is"
        self.note(
            REASON_PROGRESS_DEADLINE,
            f"promoting revision {self.canary_revision}: {why}; {action}",
            warning=True,
        )

    def begin_finalising(self) -> None:
        """Stable runs the new revision: it is the stable revision from here on."""
        self.set(
            phase=Phase.FINALISING,
            stage=Stage.SHIFTING_BACK,
            stable_spec=self.spec.to_k8s(),
            stable_revision=self.canary_revision,
            stable_config_hashes=dict(self.inputs.config_hashes),
            mirror_percent=0,
            canary_match=False,
            not_ready_since=None,
        )
        self.note(
            "Finalising",
            f"stable runs revision {self.canary_revision}; moving traffic back to it",
        )
        self.shift_back()

    def shift_back(self) -> None:
        weight = self.status.canary_weight or 0
        step = self.rollout.promotion_step_weight
        weight = 0 if step == 0 else max(0, weight - step)
        self.set(canary_weight=weight, step_started_at=self.now)
        if weight:
            self.note("StepAdvanced", f"canary weight {weight}% (moving back to stable)")

    def finalising(self) -> None:
        if self.new_revision():
            return
        promote = self.take(CONTROL_PROMOTE)
        if not (self.status.canary_weight or self.status.mirror_percent):
            self.finish()
            if promote is not None:
                self.ignore(CONTROL_PROMOTE, promote, "the promotion is complete")
            return
        if promote is not None and is_full_promotion(promote):
            self.set(canary_weight=0, step_started_at=self.now)
        elif promote is not None or (
            self.inputs.stable.runs(self.status.stable_revision)
            and self.elapsed(self.status.step_started_at) >= self.rollout.interval_seconds
        ):
            self.shift_back()

    def finish(self) -> None:
        self.clear(phase=Phase.READY, failed_checks=0, error_checks=0)
        if not self.inputs.stable.runs(self.status.stable_revision):
            self.set(phase=Phase.DEGRADED)
        self.note(
            "Promoted",
            f"revision {self.status.stable_revision} promoted: stable serves all traffic",
        )

    # --- rollback ---------------------------------------------------------------------

    def abort(self, value: str) -> None:
        said = f" ({value})" if value.strip() and value.strip().lower() != "true" else ""
        self.rollback(REASON_ABORTED, f"aborted by {CONTROL_ABORT}{said}")

    def rollback(self, reason: str, why: str) -> None:
        """All traffic to stable first (the plan routes before scaling), then the canary
        scales to zero. Stable keeps (or goes back to) the stable revision."""
        revision = self.canary_revision
        check = (
            culprit(self.status.last_analysis)
            if reason in (REASON_ANALYSIS_FAILED, REASON_ANALYSIS_ERRORS, REASON_RUNS_FAILED)
            else None
        )
        self.clear(
            phase=Phase.ROLLED_BACK,
            rollback=RollbackRecord(
                reason=reason,
                revision=revision,
                at=self.now,
                check=check.name if check else None,
                value=check.value if check else None,
                min=check.min if check else None,
                max=check.max if check else None,
                message=why,
            ),
            rollback_count=(self.status.rollback_count or 0) + 1,
        )
        self.note(
            "RolledBack",
            f"revision {revision} rolled back ({reason}): {why}; stable revision"
            f" {self.status.stable_revision} serves all traffic",
            warning=True,
        )

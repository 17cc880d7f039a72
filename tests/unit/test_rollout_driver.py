"""A test bed for the release engine, Flagger style: a HarnessDeployment driven one tick at
a time with a fake clock, fake Deployments that become ready a few seconds after they are
asked to change, and canned analysis rounds.

Between ticks nothing survives but the status, serialized to JSON and parsed back (what a
restarted operator would read), so every scenario also checks that the engine resumes from
its stored status alone. Every tick also checks the invariants any plan must keep (weights
in range, routing order, no traffic to a canary without pods, nothing left on the canary
after a rollback).

The tests at the bottom check the test bed itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.api.status import HarnessDeploymentStatus, Phase, Stage
from harness_operator.budget import SpendReading
from harness_operator.preflight import Verdict as PreflightVerdict
from harness_operator.render import ReleaseState, revision
from harness_operator.rollout import Inputs, Note, Plan, WorkloadState, advance, should_analyse

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IMAGE = "ghcr.io/acme/pr-reviewer"
ANALYSIS: dict[str, Any] = {
    "checkInterval": "1s",
    "failureLimit": 2,
    "errorLimit": 3,
    "checks": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05}],
}


def harness_spec(
    version: str = "1.0.0", *, analysis: dict[str, Any] | None = ANALYSIS, **rollout: Any
) -> dict[str, Any]:
    """A spec as a user writes it: `interval` 10s unless given; analysis on by default."""
    raw: dict[str, Any] = {
        "image": f"{IMAGE}:{version}",
        "replicas": 3,
        "rollout": {"interval": "10s", "progressDeadlineSeconds": 60, **rollout},
    }
    if analysis is not None:
        raw["analysis"] = analysis
    return raw


# --- analysis rounds ---------------------------------------------------------------------


class Verdict(Enum):
    """Like the analysis module's Outcome (deliberately not a str subclass)."""

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


@dataclass(frozen=True)
class FakeCheck:
    name: str
    outcome: Verdict
    value: float | None
    max: float | None
    message: str = ""


@dataclass(frozen=True)
class FakeRound:
    at: datetime
    results: tuple[FakeCheck, ...]

    @property
    def outcome(self) -> Verdict:
        for verdict in (Verdict.FAIL, Verdict.ERROR, Verdict.INCONCLUSIVE):
            if any(r.outcome is verdict for r in self.results):
                return verdict
        return Verdict.PASS

    def to_status(self) -> dict[str, Any]:
        return {
            "time": self.at.isoformat(),
            "outcome": self.outcome.value,
            "results": [
                {
                    "name": r.name,
                    "outcome": r.outcome.value,
                    "value": r.value,
                    "max": r.max,
                    "message": r.message,
                    "relative": False,
                }
                for r in self.results
            ],
        }


def canned_round(at: datetime, verdict: str) -> FakeRound:
    """One round of the `error-rate` check (max 0.05) with the given outcome."""
    check = {
        "Pass": FakeCheck("error-rate", Verdict.PASS, 0.01, 0.05),
        "Fail": FakeCheck("error-rate", Verdict.FAIL, 0.2, 0.05, "5xx on the canary"),
        "Inconclusive": FakeCheck("error-rate", Verdict.INCONCLUSIVE, None, 0.05, "no data"),
        "Error": FakeCheck("error-rate", Verdict.ERROR, None, 0.05, "prometheus unreachable"),
    }[verdict]
    return FakeRound(at, (check,))


# --- workloads ---------------------------------------------------------------------------


@dataclass
class FakeDeployment:
    """A Deployment whose pods are available `start_seconds` after a template or scale
    change (never, when `broken`); old pods keep serving meanwhile (maxUnavailable 0)."""

    start_seconds: float = 3.0
    revision: str | None = None
    desired: int = 0
    previous: int = 0
    changed_at: datetime = T0
    broken: bool = False
    stuck: bool = False
    lost: bool = False
    """Every pod is gone or unready (a node failure, a conflicting writer at zero)."""

    def want(self, revision: str, desired: int, now: datetime) -> None:
        if (revision, desired) != (self.revision, self.desired):
            self.previous = self.available(now)
            self.revision, self.desired, self.changed_at = revision, desired, now

    def settled(self, now: datetime) -> bool:
        if self.broken or self.lost:
            return False
        return (now - self.changed_at).total_seconds() >= self.start_seconds

    def available(self, now: datetime) -> int:
        if self.lost:
            return 0
        if self.settled(now):
            return self.desired
        old = self.previous if self.revision is not None else 0
        return min(old, self.desired)

    def observe(self, now: datetime) -> WorkloadState:
        if self.revision is None:
            return WorkloadState()
        done = self.settled(now)
        return WorkloadState(
            exists=True,
            desired=self.desired,
            updated=self.desired if done else 0,
            available=self.available(now),
            ready=done,
            deadline_exceeded=self.stuck,
            revision=self.revision,
        )


# --- the driver --------------------------------------------------------------------------


@dataclass
class Tick:
    """What one tick did (for assertions about the past)."""

    at: datetime
    plan: Plan
    analysed: str | None


@dataclass
class Release:
    """One HarnessDeployment and its operator, one tick at a time."""

    spec: dict[str, Any] = field(default_factory=harness_spec)
    config_hashes: dict[str, str] = field(default_factory=dict)
    now: datetime = T0
    step: float = 1.0
    verdict: str = "Pass"
    """Outcome of every analysis round unless `script` has one."""
    script: list[str] = field(default_factory=list)
    """Outcomes of the next rounds, in order."""
    controls: dict[str, str] = field(default_factory=dict)
    credentials: PreflightVerdict | None = None
    """The preflight verdict every tick sees (None: the spec has no model)."""
    spend: SpendReading | None = None
    """The spend reading the next tick sees (consumed by it: later ticks see None)."""
    remove_consumed: bool = True
    """Whether the fake controller removes consumed annotations (False: it crashed)."""
    stable: FakeDeployment = field(default_factory=FakeDeployment)
    canary: FakeDeployment = field(default_factory=FakeDeployment)
    stored: dict[str, Any] = field(default_factory=dict)
    history: list[Tick] = field(default_factory=list)
    invariants: list[Callable[[Release, Plan, Plan | None], None]] = field(default_factory=list)

    # --- given ---------------------------------------------------------------------------

    @classmethod
    def at_rest(cls, spec: dict[str, Any] | None = None, **kwargs: Any) -> Release:
        """A HarnessDeployment whose first deploy has completed (phase Ready)."""
        release = cls(spec=spec or harness_spec(), **kwargs)
        release.run_until(lambda r: r.phase is Phase.READY, limit=30)
        release.history.clear()
        return release

    # --- when ----------------------------------------------------------------------------

    def update(self, **changes: Any) -> None:
        """Edit the spec (top-level keys; `rollout` and `analysis` are merged)."""
        for key, value in changes.items():
            if key in ("rollout", "analysis") and isinstance(value, dict):
                self.spec = {**self.spec, key: {**self.spec.get(key, {}), **value}}
            else:
                self.spec = {**self.spec, key: value}

    def release(self, version: str) -> None:
        """A new image: a new revision."""
        self.update(image=f"{IMAGE}:{version}")

    def annotate(self, key: str, value: str = "true") -> None:
        self.controls[key] = value

    def tick(self, count: int = 1, *, analysis: str | None = None) -> Plan:
        """Run `count` ticks; `analysis` forces the outcome of this tick's round (and a
        round even when the release is not in an analysed stage)."""
        plan = None
        for _ in range(count):
            plan = self._tick(analysis)
        assert plan is not None
        return plan

    def run_until(self, done: Callable[[Release], bool], limit: float = 600) -> float:
        """Tick until `done`; returns the seconds it took."""
        start = self.now
        while not done(self):
            assert (self.now - start).total_seconds() <= limit, f"not done after {limit}s"
            self._tick(None)
        return (self.now - start).total_seconds()

    def run_for(self, seconds: float) -> None:
        end = self.now + timedelta(seconds=seconds)
        while self.now < end:
            self._tick(None)

    def _tick(self, forced: str | None) -> Plan:
        spec = HarnessDeploymentSpec.model_validate(self.spec)
        status = HarnessDeploymentStatus.model_validate(self.stored)
        verdict = None
        if forced is not None:
            verdict = forced
        elif should_analyse(status, spec):
            verdict = self.script.pop(0) if self.script else self.verdict
        inputs = Inputs(
            now=self.now,
            spec=spec,
            revision=revision(spec, self.config_hashes),
            config_hashes=dict(self.config_hashes),
            status=status,
            stable=self.stable.observe(self.now),
            canary=self.canary.observe(self.now),
            analysis=canned_round(self.now, verdict) if verdict else None,
            controls=dict(self.controls),
            credentials=self.credentials,
            spend=self.spend,
        )
        self.spend = None
        plan = advance(inputs)
        previous = self.history[-1].plan if self.history else None
        check_invariants(self, plan, previous)
        for invariant in self.invariants:
            invariant(self, plan, previous)
        # The controller: save the status, remove consumed annotations, apply the state.
        self.stored = json.loads(json.dumps(plan.status.to_k8s()))
        if self.remove_consumed:
            for key in plan.consumed:
                self.controls.pop(key, None)
        state = plan.state
        self.stable.want(revision(state.stable_spec, state.stable_hashes), spec.replicas, self.now)
        self.canary.want(
            revision(state.canary_spec, state.config_hashes), state.canary_replicas, self.now
        )
        self.history.append(Tick(self.now, plan, verdict))
        self.now += timedelta(seconds=self.step)
        return plan

    # --- then ----------------------------------------------------------------------------

    @property
    def status(self) -> HarnessDeploymentStatus:
        return HarnessDeploymentStatus.model_validate(self.stored)

    @property
    def phase(self) -> Phase | None:
        return self.status.phase

    @property
    def stage(self) -> Stage | None:
        return self.status.stage

    @property
    def weight(self) -> int:
        return self.status.canary_weight or 0

    @property
    def state(self) -> ReleaseState:
        return self.history[-1].plan.state

    @property
    def notes(self) -> list[Note]:
        return [n for t in self.history for n in t.plan.notes]

    def reasons(self) -> list[str]:
        return [n.reason for n in self.notes]

    def note(self, reason: str) -> Note:
        found = [n for n in self.notes if n.reason == reason]
        assert found, f"no {reason} note in {self.reasons()}"
        return found[-1]

    def when(self, reason: str) -> datetime:
        """When the (last) note with this reason was posted."""
        times = [t.at for t in self.history for n in t.plan.notes if n.reason == reason]
        assert times, f"no {reason} note in {self.reasons()}"
        return times[-1]

    def weights(self) -> list[int]:
        """Distinct canary weights over time."""
        out: list[int] = []
        for t in self.history:
            if not out or out[-1] != t.plan.state.canary_weight:
                out.append(t.plan.state.canary_weight)
        return out


def _shares(state: ReleaseState) -> tuple[int, int, bool]:
    return state.canary_weight, state.mirror_percent, bool(state.canary_match)


def check_invariants(release: Release, plan: Plan, previous: Plan | None) -> None:
    state, status = plan.state, plan.status
    assert 0 <= state.canary_weight <= 100
    assert 0 <= state.mirror_percent <= 100
    assert state.canary_weight == (status.canary_weight or 0)
    assert state.mirror_percent == (status.mirror_percent or 0)
    if state.canary_weight or state.mirror_percent or state.canary_match:
        assert state.canary_replicas > 0, "traffic to a canary without pods"
    if status.phase is Phase.ROLLED_BACK:
        assert _shares(state) == (0, 0, False)
        assert state.canary_replicas == 0
    if previous is not None:
        before, after = _shares(previous.state), _shares(state)
        shrinks = after[0] < before[0] or after[1] < before[1] or (before[2] and not after[2])
        assert plan.route_first == shrinks, (before, after, plan.route_first)
    # The status written is what the next tick reads.
    assert HarnessDeploymentStatus.model_validate(status.to_k8s()) == status


def rollback_invariant() -> Callable[[Release, Plan, Plan | None], None]:
    """Once a rollback is decided, the canary's share never grows again (until the next
    release starts)."""
    rolled = {"back": False}

    def check(release: Release, plan: Plan, previous: Plan | None) -> None:
        if rolled["back"] and previous is not None and plan.status.phase is Phase.ROLLED_BACK:
            assert plan.state.canary_weight <= previous.state.canary_weight
        if plan.status.phase is Phase.ROLLED_BACK:
            rolled["back"] = True
        elif plan.status.phase is Phase.PROGRESSING:
            rolled["back"] = False

    return check


# --- the test bed itself -----------------------------------------------------------------


def test_first_deploy_reaches_ready_without_analysis() -> None:
    release = Release()
    plan = release.tick()
    assert release.phase is Phase.INITIALIZING
    assert plan.analyse is False
    assert plan.state.canary_replicas == 0
    release.run_until(lambda r: r.phase is Phase.READY, limit=10)
    status = release.status
    assert status.stable_revision == status.canary_revision
    assert status.stable_spec == HarnessDeploymentSpec.model_validate(release.spec).to_k8s()
    assert status.stable_config_hashes == {}
    assert [t.analysed for t in release.history] == [None] * len(release.history)


def test_fake_deployment_becomes_ready_after_its_start_time() -> None:
    deployment = FakeDeployment(start_seconds=3)
    deployment.want("abc", 2, T0)
    assert not deployment.observe(T0 + timedelta(seconds=2)).ready
    seen = deployment.observe(T0 + timedelta(seconds=3))
    assert (seen.ready, seen.available, seen.revision) == (True, 2, "abc")


def test_rounds_are_given_only_in_analysed_stages() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_until(lambda r: r.stage is Stage.ANALYSING, limit=10)
    assert [t.analysed for t in release.history] == [None] * len(release.history)
    release.tick()
    assert release.history[-1].analysed == "Pass"


def test_status_survives_json_between_ticks() -> None:
    release = Release.at_rest()
    release.release("2.0.0")
    release.run_for(20)
    stored = json.dumps(release.stored)
    assert '"stepStartedAt": "2026-03-01T12:' in stored
    assert json.loads(stored)["lastAnalysis"]["results"][0]["relative"] is False


def test_harness_spec_is_valid() -> None:
    parsed: Mapping[str, Any] = HarnessDeploymentSpec.model_validate(harness_spec()).to_k8s()
    assert parsed["rollout"]["interval"] == "10s"

"""What `kubectl harness status` and `watch` show, as pure functions of a HarnessDeployment
object: `ReleaseView.from_object(obj)` extracts the facts, `render(view)` builds a rich
renderable, `lines(view)` the same as plain text and `summary(view)` one line (for logs and
for `watch` without a terminal). No I/O; the demo reuses them.

Every status field is optional: the view shows what is there, and tolerates phases,
outcomes and fields it does not know (an older or newer operator wrote them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import ValidationError
from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from harness_operator.api.spec import DEFAULT_MAX_WEIGHT, DEFAULT_STEP_WEIGHT, Rollout

DEFAULT_FAILURE_LIMIT: Final = 2
DEFAULT_ERROR_LIMIT: Final = 3
BAR_WIDTH: Final = 20
TIMES: Final = "\N{MULTIPLICATION SIGN}"

RELEASE_PHASES: Final = frozenset({"Progressing", "Paused", "Promoting", "Finalising"})
"""Phases of a release in flight."""
SUCCEEDED_PHASES: Final = frozenset({"Ready"})
FAILED_PHASES: Final = frozenset({"RolledBack", "Failed"})

PHASE_STYLES: Final[dict[str, str]] = {
    "Ready": "bold green",
    "Progressing": "bold cyan",
    "Paused": "bold yellow",
    "Promoting": "bold blue",
    "Finalising": "bold blue",
    "RolledBack": "bold red",
    "Failed": "bold white on red",
    "Degraded": "bold yellow",
    "Initializing": "yellow",
}
TONE_STYLES: Final[dict[str, str]] = {
    "good": "green",
    "bad": "bold red",
    "error": "bold magenta",
    "wait": "yellow",
    "neutral": "",
}

Outcome = Literal["succeeded", "failed"]


def outcome_tone(outcome: str | None) -> str:
    """`good`, `bad`, `error`, `wait` or `neutral` for an analysis outcome, whatever its
    spelling (`Pass`, `Succeeded`, `Fail`, `Error`, `Inconclusive`...)."""
    key = (outcome or "").lower()
    if key in ("pass", "passed", "success", "succeeded", "ok", "successful"):
        return "good"
    if key in ("fail", "failed", "failure"):
        return "bad"
    if key in ("error", "errored"):
        return "error"
    if key:
        return "wait"
    return "neutral"


def condition_tone(status: str | None) -> str:
    return {"True": "good", "False": "bad"}.get(status or "", "wait")


# --- formatting --------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """A measured number, compactly: `0.0512`, `1.25`, `1.2e+04`, `NaN`; `—` when absent."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return str(value)
    if not isinstance(value, int | float):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number == int(number) and abs(number) < 1e6:
        return str(int(number))
    return f"{number:.3g}" if abs(number) < 1e-3 or abs(number) >= 1e4 else f"{number:.4g}"


def threshold_text(min_: Any, max_: Any, relative: Any = False) -> str:
    """`≤ 0.05`, `≥ 0.9`, `0.9 … 1.1`; with `relative` (the status' flag: bounds on canary
    divided by stable) the bounds read `≤ 1.25`, then the multiplication sign, then `stable`;
    `—` when the check has no bound."""
    unit = f"{TIMES} stable" if relative else ""
    low = None if min_ is None else format_value(min_) + unit
    high = None if max_ is None else format_value(max_) + unit
    if low is not None and high is not None:
        return f"{low} … {high}"
    if high is not None:
        return f"≤ {high}"
    if low is not None:
        return f"≥ {low}"
    return "—"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the status (None when absent or unreadable)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def format_age(seconds: float) -> str:
    """`42s`, `3m12s`, `2h05m`, `3d04h`."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def weight_bar(weight: int, width: int = BAR_WIDTH, full: str = "█", empty: str = "░") -> str:
    filled = round(max(0, min(100, weight)) * width / 100)
    return full * filled + empty * (width - filled)


def weight_schedule(spec: Mapping[str, Any]) -> list[int] | None:
    """Canary weights of the release, from `spec.rollout` (None for blueGreen and abTest,
    which have no steps). Parsed with the API model; a rollout it rejects (a newer field,
    say) falls back to reading `steps` or `stepWeight`/`maxWeight` by hand."""
    rollout = spec.get("rollout")
    rollout = rollout if isinstance(rollout, Mapping) else {}
    if rollout.get("strategy", "canary") != "canary":
        return None
    try:
        return Rollout.model_validate(dict(rollout)).weight_schedule()
    except ValidationError:
        pass
    steps = rollout.get("steps")
    if isinstance(steps, list):
        listed = [_int(s.get("weight")) for s in steps if isinstance(s, Mapping)]
        return [w for w in listed if w is not None] or None
    step = _int(rollout.get("stepWeight")) or DEFAULT_STEP_WEIGHT
    top = _int(rollout.get("maxWeight")) or max(DEFAULT_MAX_WEIGHT, step)
    weights = list(range(step, top + 1, step)) or [top]
    return weights if weights[-1] == top else [*weights, top]


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- the facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckView:
    """One row of the last analysis."""

    name: str
    outcome: str | None
    value: Any
    stable_value: Any
    threshold: str
    message: str | None = None


@dataclass(frozen=True)
class AnalysisView:
    time: datetime | None
    outcome: str | None
    checks: tuple[CheckView, ...]


@dataclass(frozen=True)
class RollbackView:
    reason: str | None
    check: str | None
    value: Any
    threshold: str
    message: str | None
    at: datetime | None
    revision: str | None


@dataclass(frozen=True)
class ConditionView:
    type: str
    status: str | None
    reason: str | None
    message: str | None
    since: datetime | None


@dataclass(frozen=True)
class ReleaseView:
    """What the views show, extracted from a HarnessDeployment object."""

    name: str | None = None
    namespace: str | None = None
    phase: str | None = None
    stage: str | None = None
    strategy: str = "canary"
    canary_weight: int = 0
    mirror_percent: int | None = None
    canary_match: bool = False
    """Requests matching `rollout.match` go to the canary (A/B test)."""
    current_step: int | None = None
    """Index into `schedule` (0-based, as in the status)."""
    schedule: tuple[int, ...] | None = None
    stable_revision: str | None = None
    canary_revision: str | None = None
    failed_checks: int = 0
    failure_limit: int = DEFAULT_FAILURE_LIMIT
    error_checks: int = 0
    error_limit: int = DEFAULT_ERROR_LIMIT
    iterations: int | None = None
    paused: bool = False
    message: str | None = None
    release_started_at: datetime | None = None
    step_started_at: datetime | None = None
    last_analysis: AnalysisView | None = None
    rollback: RollbackView | None = None
    conditions: tuple[ConditionView, ...] = field(default_factory=tuple)
    generation: int | None = None
    observed_generation: int | None = None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ReleaseView:
        """From a whole HarnessDeployment (metadata, spec and status)."""
        meta = _mapping(obj.get("metadata"))
        return cls.from_status(
            _mapping(obj.get("status")),
            _mapping(obj.get("spec")),
            name=_str(meta.get("name")),
            namespace=_str(meta.get("namespace")),
            generation=_int(meta.get("generation")),
        )

    @classmethod
    def from_status(
        cls,
        status: Mapping[str, Any],
        spec: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        namespace: str | None = None,
        generation: int | None = None,
    ) -> ReleaseView:
        """From the status alone (`spec` adds the schedule and the limits)."""
        spec = spec or {}
        rollout = _mapping(spec.get("rollout"))
        analysis = _mapping(spec.get("analysis"))
        schedule = weight_schedule(spec)
        return cls(
            name=name,
            namespace=namespace,
            phase=_str(status.get("phase")),
            stage=_str(status.get("stage")),
            strategy=str(rollout.get("strategy") or "canary"),
            canary_weight=_int(status.get("canaryWeight")) or 0,
            mirror_percent=_int(status.get("mirrorPercent")),
            canary_match=status.get("canaryMatch") is True,
            current_step=_int(status.get("currentStep")),
            schedule=None if schedule is None else tuple(schedule),
            stable_revision=_str(status.get("stableRevision")),
            canary_revision=_str(status.get("canaryRevision")),
            failed_checks=_int(status.get("failedChecks")) or 0,
            failure_limit=_int(analysis.get("failureLimit")) or DEFAULT_FAILURE_LIMIT,
            error_checks=_int(status.get("errorChecks")) or 0,
            error_limit=_int(analysis.get("errorLimit")) or DEFAULT_ERROR_LIMIT,
            iterations=_int(status.get("iterations")),
            paused=status.get("paused") is True,
            message=_str(status.get("message")),
            release_started_at=parse_time(status.get("releaseStartedAt")),
            step_started_at=parse_time(status.get("stepStartedAt")),
            last_analysis=_analysis(status.get("lastAnalysis")),
            rollback=_rollback(status.get("rollback")),
            conditions=tuple(
                _condition(c) for c in status.get("conditions") or [] if isinstance(c, Mapping)
            ),
            generation=generation,
            observed_generation=_int(status.get("observedGeneration")),
        )

    @property
    def in_release(self) -> bool:
        return self.phase in RELEASE_PHASES

    @property
    def is_paused(self) -> bool:
        return self.paused or self.phase == "Paused"

    @property
    def up_to_date(self) -> bool:
        """Whether the status describes the latest spec (the operator has seen it); true
        when either generation is unknown."""
        if self.generation is None or self.observed_generation is None:
            return True
        return self.observed_generation >= self.generation

    @property
    def outcome(self) -> Outcome | None:
        """`succeeded` (Ready), `failed` (RolledBack, Failed), or None while a release may
        still be under way. A status older than the spec is never final: the operator has
        not acted on the latest change yet."""
        if not self.up_to_date:
            return None
        if self.phase in SUCCEEDED_PHASES:
            return "succeeded"
        if self.phase in FAILED_PHASES:
            return "failed"
        return None

    @property
    def step_text(self) -> str | None:
        """`2/4` (1-based), or None outside a stepped release."""
        if self.current_step is None or self.schedule is None:
            return None
        if not self.in_release and self.canary_weight == 0:
            return None
        return f"{self.current_step + 1}/{len(self.schedule)}"

    @property
    def title(self) -> str:
        if self.name is None:
            return "HarnessDeployment"
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def _analysis(raw: Any) -> AnalysisView | None:
    if not isinstance(raw, Mapping):
        return None
    checks = tuple(
        CheckView(
            name=str(r.get("name") or "?"),
            outcome=_str(r.get("outcome")),
            value=r.get("value"),
            stable_value=r.get("stableValue"),
            threshold=threshold_text(r.get("min"), r.get("max"), r.get("relative")),
            message=_str(r.get("message")),
        )
        for r in raw.get("results") or []
        if isinstance(r, Mapping)
    )
    return AnalysisView(
        time=parse_time(raw.get("time")), outcome=_str(raw.get("outcome")), checks=checks
    )


def _rollback(raw: Any) -> RollbackView | None:
    if not isinstance(raw, Mapping) or not raw:
        return None
    return RollbackView(
        reason=_str(raw.get("reason")),
        check=_str(raw.get("check")),
        value=raw.get("value"),
        threshold=threshold_text(raw.get("min"), raw.get("max")),
        message=_str(raw.get("message")),
        at=parse_time(raw.get("at")),
        revision=_str(raw.get("revision")),
    )


def _condition(raw: Mapping[str, Any]) -> ConditionView:
    return ConditionView(
        type=str(raw.get("type") or "?"),
        status=_str(raw.get("status")),
        reason=_str(raw.get("reason")),
        message=_str(raw.get("message")),
        since=parse_time(raw.get("lastTransitionTime")),
    )


# --- pieces shared by both renderings -----------------------------------------------------


def _ago(moment: datetime | None, now: datetime) -> str | None:
    return None if moment is None else f"{format_age((now - moment).total_seconds())} ago"


def _schedule_text(view: ReleaseView) -> str | None:
    if view.schedule is None:
        return None
    current = view.current_step if view.step_text is not None else None
    return " → ".join(f"[{w}]" if i == current else str(w) for i, w in enumerate(view.schedule))


def _revisions_text(view: ReleaseView) -> str:
    stable = view.stable_revision or "—"
    if view.canary_revision and view.canary_revision != view.stable_revision:
        return f"stable {stable} → canary {view.canary_revision}"
    return f"stable {stable}"


def _release_timing(view: ReleaseView, now: datetime) -> str | None:
    parts = []
    if view.in_release and (started := _ago(view.release_started_at, now)):
        parts.append(f"started {started}")
    if view.in_release and (step := _ago(view.step_started_at, now)):
        parts.append(f"step started {step}")
    return ", ".join(parts) or None


def _rollback_text(rollback: RollbackView, now: datetime) -> str:
    head = "rolled back"
    if rollback.revision:
        head += f" {rollback.revision}"
    if rollback.at is not None:
        head += f" {_ago(rollback.at, now)}"
    if rollback.reason:
        head += f": {rollback.reason}"
    if rollback.check:
        head += f"; check {rollback.check} = {format_value(rollback.value)}"
        if rollback.threshold != "—":
            head += f" (threshold {rollback.threshold})"
    return head


# --- rich ----------------------------------------------------------------------------------


def _phase_text(view: ReleaseView) -> Text:
    phase = view.phase or "Unknown"
    text = Text(phase, style=PHASE_STYLES.get(phase, "bold"))
    if view.stage:
        text.append(f" ({view.stage})", style="dim")
    if view.paused and view.phase != "Paused":
        text.append("  PAUSED", style="bold yellow")
    if not view.up_to_date:
        text.append("  (operator has not seen the latest spec yet)", style="dim")
    return text


def _count_text(label: str, count: int, limit: int) -> Text:
    style = "bold red" if count >= limit else "yellow" if count else "green"
    return Text.assemble((f"{label} ", ""), (f"{count}/{limit}", style))


def render(view: ReleaseView, now: datetime | None = None) -> RenderableType:
    """The status panel: phase, step and weight, revisions, checks against limits, the last
    analysis, the last rollback, conditions and the message."""
    now = now or datetime.now(UTC)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("Phase", _phase_text(view))
    weight = Text()
    if view.step_text:
        weight.append(f"step {view.step_text}  ")
    weight.append(weight_bar(view.canary_weight), style="cyan" if view.canary_weight else "dim")
    weight.append(f" {view.canary_weight}%")
    if view.mirror_percent:
        weight.append(f"  mirroring {view.mirror_percent}%", style="magenta")
    if view.canary_match:
        weight.append("  matching requests → canary", style="magenta")
    grid.add_row("Canary weight", weight)
    strategy = view.strategy
    if schedule := _schedule_text(view):
        strategy += f"  {schedule}"
    grid.add_row("Strategy", strategy)
    grid.add_row("Revisions", _revisions_text(view))
    checks = Text.assemble(
        _count_text("failed", view.failed_checks, view.failure_limit),
        "   ",
        _count_text("errors", view.error_checks, view.error_limit),
    )
    if view.iterations is not None:
        checks.append(f"   iterations {view.iterations}")
    grid.add_row("Checks", checks)
    if view.is_paused:
        grid.add_row("Paused", Text("yes", style="bold yellow"))
    if timing := _release_timing(view, now):
        grid.add_row("Release", timing)
    if view.message:
        grid.add_row("Message", view.message)
    parts: list[RenderableType] = [grid]
    if view.last_analysis is not None:
        parts.append(_analysis_table(view.last_analysis, now))
    if view.rollback is not None:
        text = Text(_rollback_text(view.rollback, now), style="red")
        if view.rollback.message:
            text.append(f"\n{view.rollback.message}", style="")
        parts.append(Panel(text, title="Last rollback", title_align="left", border_style="red"))
    if view.conditions:
        parts.append(_conditions_table(view.conditions, now))
    return Panel(Group(*parts), title=Text(view.title, style="bold"), title_align="left")


def _analysis_table(analysis: AnalysisView, now: datetime) -> Table:
    title = Text("Last analysis ")
    title.append(analysis.outcome or "—", style=TONE_STYLES[outcome_tone(analysis.outcome)])
    if ago := _ago(analysis.time, now):
        title.append(f"  {ago}", style="dim")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("canary", justify="right")
    table.add_column("stable", justify="right")
    table.add_column("threshold")
    table.add_column("message", overflow="fold")
    for check in analysis.checks:
        table.add_row(
            check.name,
            Text(check.outcome or "—", style=TONE_STYLES[outcome_tone(check.outcome)]),
            format_value(check.value),
            format_value(check.stable_value),
            check.threshold,
            check.message or "",
        )
    return table


def _conditions_table(conditions: Sequence[ConditionView], now: datetime) -> Table:
    table = Table(title="Conditions", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("type", "status", "reason", "since", "message"):
        table.add_column(column, overflow="fold" if column == "message" else "ellipsis")
    for c in conditions:
        table.add_row(
            c.type,
            Text(c.status or "—", style=TONE_STYLES[condition_tone(c.status)]),
            c.reason or "",
            _ago(c.since, now) or "",
            c.message or "",
        )
    return table


# --- plain text ----------------------------------------------------------------------------


def lines(view: ReleaseView, now: datetime | None = None) -> list[str]:
    """The panel as plain lines (no styling), e.g. for logs."""
    now = now or datetime.now(UTC)
    phase = view.phase or "Unknown"
    if view.stage:
        phase += f" ({view.stage})"
    if view.paused and view.phase != "Paused":
        phase += " PAUSED"
    out = [f"{view.title}: {phase}"]
    bar = weight_bar(view.canary_weight, full="#", empty=".")
    weight = f"canary weight {view.canary_weight}% [{bar}]"
    if view.step_text:
        weight = f"step {view.step_text}, {weight}"
    if view.mirror_percent:
        weight += f", mirroring {view.mirror_percent}%"
    if view.canary_match:
        weight += ", matching requests → canary"
    out.append(weight)
    strategy = f"strategy {view.strategy}"
    if schedule := _schedule_text(view):
        strategy += f": {schedule}"
    out.append(strategy)
    out.append(f"revisions: {_revisions_text(view)}")
    checks = (
        f"checks: failed {view.failed_checks}/{view.failure_limit},"
        f" errors {view.error_checks}/{view.error_limit}"
    )
    if view.iterations is not None:
        checks += f", iterations {view.iterations}"
    out.append(checks)
    if timing := _release_timing(view, now):
        out.append(f"release: {timing}")
    if view.message:
        out.append(f"message: {view.message}")
    if (analysis := view.last_analysis) is not None:
        head = f"last analysis: {analysis.outcome or '—'}"
        if ago := _ago(analysis.time, now):
            head += f" ({ago})"
        out.append(head)
        for c in analysis.checks:
            row = (
                f"  {c.name}: {c.outcome or '—'}, canary {format_value(c.value)},"
                f" stable {format_value(c.stable_value)}, threshold {c.threshold}"
            )
            out.append(row + (f" ({c.message})" if c.message else ""))
    if view.rollback is not None:
        out.append(_rollback_text(view.rollback, now))
        if view.rollback.message:
            out.append(f"  {view.rollback.message}")
    for condition in view.conditions:
        row = f"condition {condition.type}={condition.status or '?'}"
        if condition.reason:
            row += f" ({condition.reason})"
        out.append(row + (f": {condition.message}" if condition.message else ""))
    return out


def summary(view: ReleaseView) -> str:
    """One line: phase, step and weight, check counts, the last analysis and the message.
    Only changes when something worth a log line changed (no clock in it)."""
    parts = [view.phase or "Unknown"]
    if view.stage:
        parts[0] += f"/{view.stage}"
    if view.is_paused and view.phase != "Paused":
        parts.append("paused")
    if view.step_text:
        parts.append(f"step {view.step_text}")
    parts.append(f"weight {view.canary_weight}%")
    if view.in_release or view.failed_checks or view.error_checks:
        parts.append(f"failed {view.failed_checks}/{view.failure_limit}")
        parts.append(f"errors {view.error_checks}/{view.error_limit}")
    if (analysis := view.last_analysis) is not None and analysis.outcome:
        bad = [c.name for c in analysis.checks if outcome_tone(c.outcome) in ("bad", "error")]
        parts.append(f"analysis {analysis.outcome}" + (f" ({', '.join(bad)})" if bad else ""))
    if not view.up_to_date:
        parts.append(f"generation {view.generation} not yet observed")
    line = " | ".join(parts)
    if view.message:
        line += f" | {view.message}"
    return line

"""Evaluation of checks: which checks an analysis has (its own plus its templates'), and one
round of them against a metrics provider.

Per check, in this order:
1. sample guard on the canary (and, for relative checks, on stable): below its minimum the
   check is Inconclusive and the value is not read;
2. the canary's value: a query error is Error, no data (empty, NaN, ±Inf) follows
   `onNoData`;
3. absolute bounds (`min`/`max`), then the ratio to stable (`relativeToStable`); when both
   are set both must hold, and the worse outcome wins (Fail > Error > Inconclusive > Pass).

Nothing here raises for a metrics problem: every failure becomes an Error result whose
message says what went wrong. Within a round, identical queries are sent once, and after
the provider stopped answering (connection refused, timeout) the remaining queries are not
sent, so a round takes at most about one timeout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from harness_operator.analysis.errors import AnalysisConfigError
from harness_operator.analysis.harness import DEFAULT_HARNESS_CHECK_NAMES, DEFAULT_HARNESS_CHECKS
from harness_operator.analysis.outcome import CheckResult, Outcome, Round, best, worst
from harness_operator.analysis.providers.base import (
    MetricsProvider,
    ProviderUnavailableError,
    QueryError,
    QueryResult,
)
from harness_operator.analysis.queries import (
    BUILTIN_GUARDS,
    BUILTIN_QUERIES,
    Target,
    render_query,
)
from harness_operator.api.analysis import (
    AnalysisSpec,
    Check,
    HarnessAnalysisTemplateSpec,
    OnNoData,
    PassWhen,
    SampleGuard,
)
from harness_operator.naming import Track

# --- which checks ------------------------------------------------------------------------


def resolve_checks(
    spec: AnalysisSpec,
    templates: Mapping[str, HarnessAnalysisTemplateSpec | Mapping[str, Any]],
    *,
    harness: bool = False,
) -> list[Check]:
    """The default harness checks (when `harness`, except those `harnessChecks.disabled`
    lists or a check of the same name replaces), the analysis' own checks, then those of
    each template in `spec.templates` order.

    `templates` maps the names of the HarnessAnalysisTemplates in the namespace to their
    specs, parsed or as read from the API (`obj["spec"]`). A template's `window` and
    `minRequests` are copied into those of its checks that set neither `window` nor (for
    built-ins) `minSamples`, so the result stands on its own. Raises `AnalysisConfigError`
    naming a missing or invalid template, or a check name used twice.
    """
    checks: list[Check] = list(spec.checks or [])
    origin = dict.fromkeys((c.name for c in checks), "analysis.checks")
    missing = [ref.name for ref in spec.templates or [] if ref.name not in templates]
    if missing:
        raise AnalysisConfigError(
            "analysis.templates: HarnessAnalysisTemplate"
            f" {', '.join(repr(m) for m in missing)} not found in the namespace"
        )
    for ref in spec.templates or []:
        template = _parse_template(ref.name, templates[ref.name])
        source = f"HarnessAnalysisTemplate {ref.name!r}"
        for check in template.checks:
            if check.name in origin:
                raise AnalysisConfigError(
                    f"analysis: check name {check.name!r} is used by both {origin[check.name]}"
                    f" and {source}; rename one of them"
                )
            origin[check.name] = source
            checks.append(_with_template_defaults(check, template))
    if not harness:
        return checks
    disabled = set(spec.harness_checks.disabled or []) if spec.harness_checks else set()
    if unknown := sorted(disabled - set(DEFAULT_HARNESS_CHECK_NAMES)):
        raise AnalysisConfigError(
            f"analysis.harnessChecks.disabled: no default check {', '.join(unknown)}; the"
            f" defaults are {', '.join(DEFAULT_HARNESS_CHECK_NAMES)}"
        )
    defaults = [c for c in DEFAULT_HARNESS_CHECKS if c.name not in disabled | set(origin)]
    return [*defaults, *checks]


def _parse_template(
    name: str, raw: HarnessAnalysisTemplateSpec | Mapping[str, Any]
) -> HarnessAnalysisTemplateSpec:
    if isinstance(raw, HarnessAnalysisTemplateSpec):
        return raw
    try:
        return HarnessAnalysisTemplateSpec.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in e.errors()
        )
        raise AnalysisConfigError(
            f"analysis.templates: HarnessAnalysisTemplate {name!r} is invalid: {problems}"
        ) from None


def _with_template_defaults(check: Check, template: HarnessAnalysisTemplateSpec) -> Check:
    update: dict[str, object] = {}
    if check.window is None and template.window is not None:
        update["window"] = template.window
    if (
        check.builtin is not None
        and check.min_samples is None
        and template.min_requests is not None
    ):
        update["min_samples"] = SampleGuard(min=template.min_requests)
    return check.model_copy(update=update) if update else check


# --- one round ---------------------------------------------------------------------------


def evaluate(
    checks: Sequence[Check],
    analysis: AnalysisSpec,
    target: Target,
    provider: MetricsProvider,
    now: datetime,
) -> Round:
    """Evaluate every check once for `target` and return the round (stamped `now`). Never
    raises for query problems: they become Error results."""
    session = _Session(provider)
    return Round(
        at=now,
        results=tuple(_evaluate(check, analysis, target, session) for check in checks),
    )


class _Session:
    """The provider as seen by one round: each distinct query is sent once, and none after
    the provider was found unavailable."""

    def __init__(self, provider: MetricsProvider) -> None:
        self._provider = provider
        self._answers: dict[str, QueryResult | QueryError] = {}
        self._down: ProviderUnavailableError | None = None

    def query(self, promql: str) -> QueryResult:
        if promql not in self._answers:
            self._answers[promql] = self._ask(promql)
        answer = self._answers[promql]
        if isinstance(answer, QueryError):
            raise answer
        return answer

    def _ask(self, promql: str) -> QueryResult | QueryError:
        if self._down is not None:
            return ProviderUnavailableError(f"not queried, an earlier query failed: {self._down}")
        try:
            value = self._provider.query(promql)
        except ProviderUnavailableError as e:
            self._down = e
            return e
        except QueryError as e:
            return e
        except Exception as e:  # a provider bug must not stop the round
            return QueryError(f"metrics provider raised {type(e).__name__}: {e}")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return QueryError(f"metrics provider returned {value!r}, not a number")
        return None if value is None else float(value)


@dataclass(frozen=True)
class _Part:
    """One comparison within a check."""

    outcome: Outcome
    message: str


class _Evaluation:
    """The queries of one check, rendered for both tracks."""

    def __init__(
        self, check: Check, analysis: AnalysisSpec, target: Target, session: _Session
    ) -> None:
        self.check = check
        self.session = session
        self.window = check.window or analysis.window
        query = _query_of(check)
        self.guard = _guard(check, analysis)
        self.queries = {track: render_query(query, target, track, self.window) for track in Track}
        self.guard_queries = (
            {t: render_query(self.guard[0], target, t, self.window) for t in Track}
            if self.guard
            else {}
        )

    def guard_part(self, track: Track) -> _Part | None:
        """Inconclusive (or Error) when `track` has too few samples; None when enough."""
        if not self.guard:
            return None
        needed = self.guard[1]
        try:
            samples = self.session.query(self.guard_queries[track])
        except QueryError as e:
            return _Part(Outcome.ERROR, f"{track} sample guard query failed: {e}")
        count = samples if samples is not None and math.isfinite(samples) else 0.0
        if count < needed:
            return _Part(
                Outcome.INCONCLUSIVE,
                f"{track} has {_fmt(count)} samples in {self.window}, needs at least {needed}",
            )
        return None

    def value(self, track: Track) -> float | _Part:
        """The value of `track`, or the part that stands for it (error or no data)."""
        try:
            value = self.session.query(self.queries[track])
        except QueryError as e:
            return _Part(Outcome.ERROR, f"{track} query failed: {e}")
        if value is None or not math.isfinite(value):
            what = "an empty result" if value is None else _fmt(value)
            return self.no_data(f"{track} query returned {what}")
        return value

    def no_data(self, what: str) -> _Part:
        policy = self.check.on_no_data
        outcome = {
            OnNoData.INCONCLUSIVE: Outcome.INCONCLUSIVE,
            OnNoData.FAIL: Outcome.FAIL,
            OnNoData.PASS: Outcome.PASS,
        }[policy]
        return _Part(outcome, f"{what} (no data; onNoData: {policy})")


def _query_of(check: Check) -> str:
    if check.query is not None:
        return check.query
    if check.builtin is not None:
        return BUILTIN_QUERIES[check.builtin]
    raise AnalysisConfigError("set builtin or query")


def _guard(check: Check, analysis: AnalysisSpec) -> tuple[str, int] | None:
    """The guard query and its minimum, or None when the check has no guard."""
    guard = check.min_samples
    default = (
        analysis.min_tasks
        if check.builtin is not None and check.builtin.per_task
        else analysis.min_requests
    )
    needed = guard.min if guard is not None else default
    if guard is not None and guard.query is not None:
        query = guard.query
    elif check.builtin is not None:
        query = BUILTIN_GUARDS[check.builtin]
    else:
        return None
    return (query, needed) if needed > 0 else None


def _evaluate(
    check: Check, analysis: AnalysisSpec, target: Target, session: _Session
) -> CheckResult:
    relative = check.relative_to_stable
    bounds = (relative.min, relative.max) if relative else (check.min, check.max)
    if relative is not None and relative.min is None and relative.max is None:
        bounds = (check.min, check.max)  # only maxIncrease: the absolute bounds show
    combine = worst if check.pass_when is PassWhen.ALL else best

    def result(
        parts: list[_Part], value: float | None = None, stable: float | None = None
    ) -> CheckResult:
        return CheckResult(
            name=check.name,
            outcome=combine(tuple(p.outcome for p in parts)),
            value=value,
            stable_value=stable,
            min=bounds[0],
            max=bounds[1],
            relative=relative is not None,
            message="; ".join(p.message for p in parts),
        )

    try:
        ev = _Evaluation(check, analysis, target, session)
    except AnalysisConfigError as e:
        return result([_Part(Outcome.ERROR, f"check {check.name!r}: {e}")])

    if (guarded := ev.guard_part(Track.CANARY)) is not None:
        return result([guarded])
    canary = ev.value(Track.CANARY)
    if isinstance(canary, _Part):
        return result([canary])

    parts: list[_Part] = []
    if check.min is not None or check.max is not None:
        parts.append(_compare("canary", canary, check.min, check.max))
    stable: float | None = None
    if relative is not None:
        stable_or_part = _stable(ev)
        if isinstance(stable_or_part, _Part):
            parts.append(stable_or_part)
        else:
            stable = stable_or_part
            if relative.min is not None or relative.max is not None:
                parts.append(_compare_ratio(canary, stable, relative.min, relative.max))
            if relative.max_increase is not None:
                parts.append(_compare_increase(canary, stable, relative.max_increase))
    return result(parts, canary, stable)


def _compare_increase(canary: float, stable: float, most: float) -> _Part:
    increase = canary - stable
    verdict = Outcome.FAIL if increase > most else Outcome.PASS
    where = "above" if verdict is Outcome.FAIL else "within"
    return _Part(
        verdict,
        f"canary-stable {_fmt(increase)} is {where} max increase {_fmt(most)}"
        f" (canary {_fmt(canary)}, stable {_fmt(stable)})",
    )


def _stable(ev: _Evaluation) -> float | _Part:
    if (guarded := ev.guard_part(Track.STABLE)) is not None:
        return guarded
    return ev.value(Track.STABLE)


def _compare(what: str, value: float, low: float | None, high: float | None) -> _Part:
    if low is not None and value < low:
        return _Part(Outcome.FAIL, f"{what} {_fmt(value)} is below min {_fmt(low)}")
    if high is not None and value > high:
        return _Part(Outcome.FAIL, f"{what} {_fmt(value)} is above max {_fmt(high)}")
    return _Part(Outcome.PASS, f"{what} {_fmt(value)} is within {_range(low, high)}")


def _compare_ratio(canary: float, stable: float, low: float | None, high: float | None) -> _Part:
    if stable == 0:
        ratio = 1.0 if canary == 0 else math.copysign(math.inf, canary)
    else:
        ratio = canary / stable
    part = _compare("canary/stable", ratio, low, high)
    return _Part(part.outcome, f"{part.message} (canary {_fmt(canary)}, stable {_fmt(stable)})")


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"[{_fmt(low)}, {_fmt(high)}]"
    if low is not None:
        return f"min {_fmt(low)}"
    return f"max {_fmt(high)}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return f"{value:.4g}"

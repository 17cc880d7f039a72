"""Evaluation of checks against an in-memory provider: outcomes of single checks (absolute,
relative, no data, errors, guards), round outcomes, status shapes, template resolution and
the rollback counters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from harness_operator.analysis import (
    BUILTIN_GUARDS,
    BUILTIN_QUERIES,
    AnalysisConfigError,
    CheckResult,
    Outcome,
    ProviderUnavailableError,
    QueryError,
    Round,
    Target,
    evaluate,
    render_query,
    resolve_checks,
)
from harness_operator.api.analysis import (
    AnalysisSpec,
    Builtin,
    Check,
    HarnessAnalysisTemplateSpec,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
TARGET = Target(name="pr-reviewer", namespace="agents", stable_revision="s1", canary_revision="c2")
VALUE = 'my_value{harness="{{name}}",track="{{track}}"}'
GUARD = 'my_count{harness="{{name}}",track="{{track}}"}'

Answer = float | None | Exception


class FakeProvider:
    """Answers rendered queries from a table; records what was asked."""

    def __init__(self, answers: Mapping[str, Answer]) -> None:
        self.answers = dict(answers)
        self.calls: list[str] = []

    def query(self, promql: str) -> float | None:
        self.calls.append(promql)
        if promql not in self.answers:
            raise AssertionError(f"unexpected query {promql}")
        answer = self.answers[promql]
        if isinstance(answer, Exception):
            raise answer
        return answer


def q(template: str, track: str = "canary", window: str = "1m") -> str:
    return render_query(template, TARGET, track, window)


def check(**fields: Any) -> Check:
    return Check.model_validate({"name": "c", **fields})


def analysis(**fields: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"templates": [{"name": "unused"}], **fields})


def run(
    c: Check, answers: Mapping[str, Answer], spec: AnalysisSpec | None = None
) -> tuple[CheckResult, FakeProvider]:
    provider = FakeProvider(answers)
    round_ = evaluate([c], spec or analysis(), TARGET, provider, NOW)
    assert round_.at == NOW
    (result,) = round_.results
    assert result.name == c.name
    return result, provider


# --- absolute bounds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "value", "outcome"),
    [
        ({"max": 1.0}, 0.5, Outcome.PASS),
        ({"max": 1.0}, 1.0, Outcome.PASS),  # bounds are inclusive
        ({"max": 1.0}, 1.01, Outcome.FAIL),
        ({"min": 0.9}, 0.95, Outcome.PASS),
        ({"min": 0.9}, 0.9, Outcome.PASS),
        ({"min": 0.9}, 0.5, Outcome.FAIL),
        ({"min": 0.0, "max": 1.0}, -0.1, Outcome.FAIL),
        ({"min": 0.0, "max": 1.0}, 0.0, Outcome.PASS),
        ({"min": 0.0, "max": 1.0}, 2.0, Outcome.FAIL),
        ({"max": -1.0}, -2.0, Outcome.PASS),
    ],
)
def test_absolute_bounds(bounds: dict[str, float], value: float, outcome: Outcome) -> None:
    result, _ = run(check(query=VALUE, **bounds), {q(VALUE): value})
    assert result.outcome is outcome
    assert result.value == value
    assert result.stable_value is None
    assert (result.min, result.max, result.relative) == (
        bounds.get("min"),
        bounds.get("max"),
        False,
    )
    assert ("above max" in result.message or "below min" in result.message) == (
        outcome is Outcome.FAIL
    )


def test_messages_say_what_was_compared() -> None:
    failed, _ = run(check(query=VALUE, max=0.05), {q(VALUE): 0.08})
    assert failed.message == "canary 0.08 is above max 0.05"
    passed, _ = run(check(query=VALUE, min=0.9, max=1), {q(VALUE): 0.95})
    assert passed.message == "canary 0.95 is within [0.9, 1]"


# --- no data -----------------------------------------------------------------------------

NO_DATA_POLICIES = [
    ("inconclusive", Outcome.INCONCLUSIVE),
    ("fail", Outcome.FAIL),
    ("pass", Outcome.PASS),
]


@pytest.mark.parametrize(("policy", "outcome"), NO_DATA_POLICIES)
@pytest.mark.parametrize(
    ("answer", "shown"),
    [(None, "an empty result"), (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf")],
)
def test_no_data_follows_on_no_data(
    policy: str, outcome: Outcome, answer: float | None, shown: str
) -> None:
    result, _ = run(check(query=VALUE, max=1, onNoData=policy), {q(VALUE): answer})
    assert result.outcome is outcome
    assert result.value is None
    assert shown in result.message
    assert f"onNoData: {policy}" in result.message


def test_no_data_defaults_to_inconclusive() -> None:
    result, _ = run(check(query=VALUE, max=1), {q(VALUE): math.nan})
    assert result.outcome is Outcome.INCONCLUSIVE


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        QueryError("HTTP 400: bad_data: parse error"),
        QueryError("query returned 3 series, a check needs exactly one number"),
        ProviderUnavailableError("cannot reach http://127.0.0.1:9: connection refused"),
        RuntimeError("provider bug"),
    ],
    ids=["bad-promql", "several-series", "unreachable", "provider-bug"],
)
@pytest.mark.parametrize("policy", ["inconclusive", "fail", "pass"])
def test_query_errors_are_errors_whatever_on_no_data(error: Exception, policy: str) -> None:
    result, _ = run(check(query=VALUE, max=1, onNoData=policy), {q(VALUE): error})
    assert result.outcome is Outcome.ERROR
    assert result.value is None
    assert str(error) in result.message
    assert result.message.startswith("canary query failed")


def test_a_provider_returning_garbage_is_an_error() -> None:
    result, _ = run(check(query=VALUE, max=1), {q(VALUE): "0.5"})  # type: ignore[dict-item]
    assert result.outcome is Outcome.ERROR
    assert "not a number" in result.message


def test_unknown_placeholder_in_an_unvalidated_check_is_an_error_naming_it() -> None:
    bad = Check.model_construct(
        name="sneaky",
        builtin=None,
        query="x{a={{tenant}}}",
        min=None,
        max=1.0,
        relative_to_stable=None,
        window=None,
        on_no_data=check(query=VALUE, max=1).on_no_data,
        min_samples=None,
    )
    result, provider = run(bad, {})
    assert result.outcome is Outcome.ERROR
    assert "'sneaky'" in result.message
    assert "{{tenant}}" in result.message
    assert provider.calls == []


# --- relative to stable ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "canary", "stable", "outcome"),
    [
        ({"relativeToStable": {"max": 1.25}}, 1.2, 1.0, Outcome.PASS),
        ({"relativeToStable": {"max": 1.25}}, 1.25, 1.0, Outcome.PASS),
        ({"relativeToStable": {"max": 1.25}}, 1.3, 1.0, Outcome.FAIL),
        ({"relativeToStable": {"min": 0.9}}, 0.8, 1.0, Outcome.FAIL),
        ({"relativeToStable": {"min": 0.9, "max": 1.1}}, 1.0, 1.0, Outcome.PASS),
        # stable at 0: equal zeros are a ratio of 1, anything else is infinitely worse
        ({"relativeToStable": {"max": 1.25}}, 0.0, 0.0, Outcome.PASS),
        ({"relativeToStable": {"max": 1.25}}, 0.1, 0.0, Outcome.FAIL),
        ({"relativeToStable": {"min": 0.9}}, 0.1, 0.0, Outcome.PASS),
        ({"relativeToStable": {"min": 0.5}}, 0.0, 0.0, Outcome.PASS),
        # absolute and relative: both must hold
        ({"max": 2.0, "relativeToStable": {"max": 1.25}}, 1.9, 1.8, Outcome.PASS),
        ({"max": 2.0, "relativeToStable": {"max": 1.25}}, 2.1, 2.0, Outcome.FAIL),
        ({"max": 2.0, "relativeToStable": {"max": 1.25}}, 1.9, 1.0, Outcome.FAIL),
    ],
)
def test_relative_to_stable(
    fields: dict[str, Any], canary: float, stable: float, outcome: Outcome
) -> None:
    result, _ = run(check(query=VALUE, **fields), {q(VALUE): canary, q(VALUE, "stable"): stable})
    assert result.outcome is outcome, result.message
    assert (result.value, result.stable_value) == (canary, stable)
    assert result.relative is True
    bounds = fields["relativeToStable"]
    assert (result.min, result.max) == (bounds.get("min"), bounds.get("max"))
    assert f"stable {stable:.4g}" in result.message


def test_relative_message_shows_the_ratio_and_both_values() -> None:
    result, _ = run(
        check(query=VALUE, relativeToStable={"max": 1.25}), {q(VALUE): 0.6, q(VALUE, "stable"): 0.4}
    )
    assert result.message == "canary/stable 1.5 is above max 1.25 (canary 0.6, stable 0.4)"
    result, _ = run(
        check(query=VALUE, relativeToStable={"max": 1.25}), {q(VALUE): 0.1, q(VALUE, "stable"): 0}
    )
    assert "canary/stable +Inf is above max 1.25" in result.message


@pytest.mark.parametrize(("policy", "outcome"), NO_DATA_POLICIES)
@pytest.mark.parametrize("answer", [None, math.nan])
def test_stable_without_data_follows_on_no_data(
    policy: str, outcome: Outcome, answer: float | None
) -> None:
    result, _ = run(
        check(query=VALUE, relativeToStable={"max": 1.25}, onNoData=policy),
        {q(VALUE): 0.5, q(VALUE, "stable"): answer},
    )
    assert result.outcome is outcome
    assert (result.value, result.stable_value) == (0.5, None)
    assert "stable query returned" in result.message


def test_stable_error_is_an_error_unless_the_absolute_bound_fails() -> None:
    error = QueryError("HTTP 503: timeout")
    relative = {"relativeToStable": {"max": 1.25}}
    result, _ = run(check(query=VALUE, **relative), {q(VALUE): 0.5, q(VALUE, "stable"): error})
    assert result.outcome is Outcome.ERROR
    assert "stable query failed: HTTP 503: timeout" in result.message
    result, _ = run(
        check(query=VALUE, max=0.1, **relative), {q(VALUE): 0.5, q(VALUE, "stable"): error}
    )
    assert result.outcome is Outcome.FAIL
    assert "above max 0.1" in result.message
    assert "stable query failed" in result.message


def test_canary_without_data_does_not_query_stable() -> None:
    result, provider = run(
        check(query=VALUE, relativeToStable={"max": 1.25}, onNoData="fail"), {q(VALUE): None}
    )
    assert result.outcome is Outcome.FAIL
    assert provider.calls == [q(VALUE)]


# --- sample guards -----------------------------------------------------------------------


def builtin_answers(
    builtin: Builtin, canary: Answer, samples: Answer, window: str = "1m"
) -> dict[str, Answer]:
    return {
        q(BUILTIN_QUERIES[builtin], window=window): canary,
        q(BUILTIN_GUARDS[builtin], window=window): samples,
    }


@pytest.mark.parametrize("samples", [0.0, 3.0, 19.99, None, math.nan])
def test_builtin_guard_below_min_requests_is_inconclusive(samples: float | None) -> None:
    c = check(builtin="errorRate", max=0.05, onNoData="fail")
    answers = builtin_answers(Builtin.ERROR_RATE, 0.5, samples)
    result, provider = run(c, answers)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.value is None
    shown = 0 if samples is None or math.isnan(samples) else samples
    assert result.message == f"canary has {shown:.4g} samples in 1m, needs at least 20"
    assert provider.calls == [q(BUILTIN_GUARDS[Builtin.ERROR_RATE])]  # value never read


def test_builtin_guard_met_reads_the_value() -> None:
    c = check(builtin="errorRate", max=0.05)
    result, provider = run(c, builtin_answers(Builtin.ERROR_RATE, 0.08, 20.0))
    assert result.outcome is Outcome.FAIL
    assert len(provider.calls) == 2


def test_guard_error_is_an_error() -> None:
    c = check(builtin="latencyP95", max=2)
    answers = builtin_answers(Builtin.LATENCY_P95, 1.0, QueryError("boom"))
    result, _ = run(c, answers)
    assert result.outcome is Outcome.ERROR
    assert result.message == "canary sample guard query failed: boom"


def test_min_requests_and_min_samples_set_the_guard() -> None:
    c = check(builtin="errorRate", max=0.05)
    answers = builtin_answers(Builtin.ERROR_RATE, 0.01, 7.0)
    assert run(c, answers, analysis(minRequests=5))[0].outcome is Outcome.PASS
    assert run(c, answers, analysis(minRequests=8))[0].outcome is Outcome.INCONCLUSIVE
    tighter = check(builtin="errorRate", max=0.05, minSamples={"min": 10})
    result, _ = run(tighter, answers, analysis(minRequests=5))
    assert result.outcome is Outcome.INCONCLUSIVE
    assert "needs at least 10" in result.message


def test_min_requests_zero_disables_the_builtin_guard() -> None:
    c = check(builtin="costPerRequest", relativeToStable={"max": 1.25})
    query = BUILTIN_QUERIES[Builtin.COST_PER_REQUEST]
    answers = {q(query): 0.02, q(query, "stable"): 0.02}
    result, provider = run(c, answers, analysis(minRequests=0))
    assert result.outcome is Outcome.PASS
    assert set(provider.calls) == set(answers)


def test_custom_guard_query() -> None:
    c = check(query=VALUE, max=1, minSamples={"query": GUARD, "min": 30})
    result, _ = run(c, {q(GUARD): 29.0, q(VALUE): 0.5})
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.message == "canary has 29 samples in 1m, needs at least 30"
    assert run(c, {q(GUARD): 30.0, q(VALUE): 0.5})[0].outcome is Outcome.PASS


def test_query_checks_have_no_guard_by_default() -> None:
    result, provider = run(check(query=VALUE, max=1), {q(VALUE): 0.5})
    assert result.outcome is Outcome.PASS
    assert provider.calls == [q(VALUE)]


def test_relative_checks_guard_stable_too() -> None:
    c = check(query=VALUE, relativeToStable={"max": 1.25}, minSamples={"query": GUARD, "min": 30})
    answers = {
        q(GUARD): 50.0,
        q(VALUE): 0.5,
        q(GUARD, "stable"): 4.0,
        q(VALUE, "stable"): 0.1,
    }
    result, provider = run(c, answers)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.message == "stable has 4 samples in 1m, needs at least 30"
    assert q(VALUE, "stable") not in provider.calls
    # ... but an absolute bound that fails on the canary still fails.
    strict = check(
        query=VALUE, max=0.1, relativeToStable={"max": 1.25}, minSamples={"query": GUARD, "min": 30}
    )
    assert run(strict, answers)[0].outcome is Outcome.FAIL


def test_check_window_overrides_the_analysis_window() -> None:
    c = check(builtin="latencyP95", max=2, window="5m")
    answers = builtin_answers(Builtin.LATENCY_P95, 1.5, 100.0, window="5m")
    result, provider = run(c, answers, analysis(window="2m"))
    assert result.outcome is Outcome.PASS
    assert all("[5m]" in call for call in provider.calls)
    c = check(builtin="latencyP95", max=2)
    answers = builtin_answers(Builtin.LATENCY_P95, 1.5, 100.0, window="2m")
    assert run(c, answers, analysis(window="2m"))[0].outcome is Outcome.PASS


# --- rounds ------------------------------------------------------------------------------


def result_with(outcome: Outcome, name: str = "c") -> CheckResult:
    return CheckResult(name, outcome, None, None, None, None, False, "")


P, F, N, E = Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE, Outcome.ERROR


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ((), P),
        ((P,), P),
        ((P, P), P),
        ((P, N), N),
        ((N, E), E),
        ((E, P), E),
        ((P, E, N), E),
        ((N, F), F),
        ((E, F), F),
        ((F, E, N, P), F),
    ],
)
def test_round_outcome_order(outcomes: tuple[Outcome, ...], expected: Outcome) -> None:
    round_ = Round(NOW, tuple(result_with(o, f"c{i}") for i, o in enumerate(outcomes)))
    assert round_.outcome is expected
    assert round_.has_error is (E in outcomes)


def test_round_of_several_checks_keeps_their_order() -> None:
    checks = [
        check(query=VALUE, max=1).model_copy(update={"name": "a"}),
        check(query=GUARD, min=10).model_copy(update={"name": "b"}),
    ]
    provider = FakeProvider({q(VALUE): 0.5, q(GUARD): 3.0})
    round_ = evaluate(checks, analysis(), TARGET, provider, NOW)
    assert [r.name for r in round_.results] == ["a", "b"]
    assert [r.outcome for r in round_.results] == [P, F]
    assert round_.outcome is F
    assert round_.result("b") is round_.results[1]
    assert round_.result("nope") is None


def test_identical_queries_are_sent_once_per_round() -> None:
    checks = [
        check(builtin="errorRate", max=0.05).model_copy(update={"name": "a"}),
        check(builtin="latencyP95", max=2).model_copy(update={"name": "b"}),
    ]
    answers = {
        **builtin_answers(Builtin.ERROR_RATE, 0.01, 50.0),
        **builtin_answers(Builtin.LATENCY_P95, 1.0, 50.0),
    }
    provider = FakeProvider(answers)
    round_ = evaluate(checks, analysis(), TARGET, provider, NOW)
    assert round_.outcome is P
    assert provider.calls.count(q(BUILTIN_GUARDS[Builtin.ERROR_RATE])) == 1
    assert len(provider.calls) == 3


def test_an_unavailable_provider_is_asked_once_per_round() -> None:
    down = ProviderUnavailableError("no answer from http://prom:9090 within 5s")
    checks = [
        check(query=VALUE, max=1).model_copy(update={"name": "a"}),
        check(query=GUARD, max=1).model_copy(update={"name": "b"}),
    ]
    provider = FakeProvider({q(VALUE): down, q(GUARD): 1.0})
    round_ = evaluate(checks, analysis(), TARGET, provider, NOW)
    assert [r.outcome for r in round_.results] == [E, E]
    assert provider.calls == [q(VALUE)]
    assert "not queried" in round_.results[1].message
    assert "within 5s" in round_.results[1].message
    # A plain query error does not stop the round.
    provider = FakeProvider({q(VALUE): QueryError("bad_data"), q(GUARD): 1.0})
    round_ = evaluate(checks, analysis(), TARGET, provider, NOW)
    assert [r.outcome for r in round_.results] == [E, P]


def test_status_shapes() -> None:
    c = check(query=VALUE, max=3, relativeToStable={"max": 1.25})
    provider = FakeProvider({q(VALUE): 1.2, q(VALUE, "stable"): 1.0})
    round_ = evaluate([c], analysis(), TARGET, provider, NOW)
    assert round_.to_status() == {
        "time": "2026-03-04T05:06:07Z",
        "outcome": "Pass",
        "results": [
            {
                "name": "c",
                "outcome": "Pass",
                "value": 1.2,
                "stableValue": 1.0,
                "max": 1.25,
                "relative": True,
                "message": "canary 1.2 is within max 3; canary/stable 1.2 is within max 1.25"
                " (canary 1.2, stable 1)",
            }
        ],
    }
    no_data = CheckResult("x", E, math.nan, math.inf, None, 2.0, False, "m" * 5000)
    status = no_data.to_status()
    assert status == {
        "name": "x",
        "outcome": "Error",
        "max": 2.0,
        "relative": False,
        "message": status["message"],
    }
    assert len(status["message"]) == 1024
    assert status["message"].endswith("...")


def test_times_are_utc_and_never_rounded() -> None:
    assert Round(datetime(2026, 1, 2, 3, 4, 5), ()).to_status()["time"] == "2026-01-02T03:04:05Z"
    later = NOW.astimezone(timezone(timedelta(hours=2))) + timedelta(microseconds=50)
    assert Round(later, ()).to_status()["time"] == "2026-03-04T05:06:07.000050Z"


def test_config_error_round() -> None:
    round_ = Round.config_error(NOW, "analysis.templates: 'x' not found")
    assert round_.outcome is E
    assert round_.to_status()["results"] == [
        {
            "name": "config",
            "outcome": "Error",
            "relative": False,
            "message": "analysis.templates: 'x' not found",
        }
    ]


# --- resolving templates -----------------------------------------------------------------


def template(**fields: Any) -> HarnessAnalysisTemplateSpec:
    return HarnessAnalysisTemplateSpec.model_validate(fields)


def test_resolve_appends_template_checks_in_order() -> None:
    spec = AnalysisSpec.model_validate(
        {
            "checks": [{"name": "own", "query": VALUE, "max": 1}],
            "templates": [{"name": "t2"}, {"name": "t1"}],
        }
    )
    templates = {
        "t1": template(checks=[{"name": "one", "builtin": "errorRate", "max": 0.05}]),
        "t2": template(checks=[{"name": "two", "builtin": "latencyP95", "max": 2}]),
        "unrelated": template(checks=[{"name": "own", "builtin": "errorRate", "max": 1}]),
    }
    assert [c.name for c in resolve_checks(spec, templates)] == ["own", "two", "one"]


def test_resolve_applies_template_defaults_to_its_own_checks_only() -> None:
    spec = AnalysisSpec.model_validate(
        {
            "checks": [{"name": "own", "builtin": "errorRate", "max": 1}],
            "templates": [{"name": "t"}],
        }
    )
    t = template(
        window="5m",
        minRequests=50,
        checks=[
            {"name": "plain", "builtin": "errorRate", "max": 0.05},
            {"name": "custom", "query": VALUE, "max": 1, "window": "10m"},
            {"name": "guarded", "builtin": "latencyP95", "max": 2, "minSamples": {"min": 3}},
        ],
    )
    own, plain, custom, guarded = resolve_checks(spec, {"t": t})
    assert (own.window, own.min_samples) == (None, None)
    assert plain.window == "5m"
    assert plain.min_samples is not None
    assert (plain.min_samples.query, plain.min_samples.min) == (None, 50)
    assert (custom.window, custom.min_samples) == ("10m", None)
    assert guarded.window == "5m"
    assert guarded.min_samples is not None
    assert guarded.min_samples.min == 3
    # The copied guard takes effect.
    answers = builtin_answers(Builtin.ERROR_RATE, 0.01, 40.0, window="5m")
    result, _ = run(plain, answers, spec)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert "needs at least 50" in result.message


def test_resolve_accepts_raw_template_specs() -> None:
    spec = analysis(templates=[{"name": "t"}])
    raw = {"checks": [{"name": "e", "builtin": "errorRate", "max": 0.05}], "window": "2m"}
    (c,) = resolve_checks(spec, {"t": raw})
    assert (c.name, c.window) == ("e", "2m")


def test_resolve_names_a_missing_template() -> None:
    spec = analysis(templates=[{"name": "here"}, {"name": "gone"}])
    with pytest.raises(AnalysisConfigError, match="HarnessAnalysisTemplate 'gone' not found"):
        resolve_checks(spec, {"here": template(checks=[{"name": "a", "query": VALUE, "max": 1}])})


def test_resolve_names_an_invalid_template() -> None:
    spec = analysis(templates=[{"name": "broken"}])
    raw = {"checks": [{"name": "a", "query": VALUE}]}
    with pytest.raises(AnalysisConfigError, match=r"'broken' is invalid: .*checks\[a\]: set at"):
        resolve_checks(spec, {"broken": raw})


@pytest.mark.parametrize(
    ("own", "message"),
    [
        (
            [{"name": "dup", "query": VALUE, "max": 1}],
            "'dup' is used by both analysis.checks and HarnessAnalysisTemplate 'b'",
        ),
        (None, "'dup' is used by both HarnessAnalysisTemplate 'a' and HarnessAnalysisTemplate 'b'"),
    ],
)
def test_resolve_rejects_clashing_names(own: list[dict[str, Any]] | None, message: str) -> None:
    refs = [{"name": "b"}] if own else [{"name": "a"}, {"name": "b"}]
    spec = AnalysisSpec.model_validate({"checks": own, "templates": refs})
    templates = {
        "a": template(checks=[{"name": "dup", "builtin": "errorRate", "max": 1}]),
        "b": template(checks=[{"name": "dup", "builtin": "errorRate", "max": 1}]),
    }
    with pytest.raises(AnalysisConfigError, match=message):
        resolve_checks(spec, templates)

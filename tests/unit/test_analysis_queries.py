"""Query templating and the built-in queries: every placeholder, unknown placeholders,
golden strings, and docs/metrics.md quoting each built-in verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness_operator.analysis import (
    BUILTIN_GUARDS,
    BUILTIN_QUERIES,
    BUILTIN_UNITS,
    AnalysisConfigError,
    Target,
    render_query,
)
from harness_operator.analysis.queries import (
    HARNESS_REQUESTS_GUARD,
    HARNESS_TASKS_GUARD,
    ISTIO_REQUESTS_GUARD,
)
from harness_operator.api import HarnessDeployment
from harness_operator.api.analysis import (
    PLACEHOLDERS,
    AnalysisSpec,
    Builtin,
    unknown_placeholders,
)
from harness_operator.api.model import Pricing
from harness_operator.api.resource import HarnessAnalysisTemplate
from harness_operator.naming import Track

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs" / "metrics.md"
TARGET = Target(
    name="pr-reviewer", namespace="agents", stable_revision="5d8f7c", canary_revision="9a1b2e"
)
EVERYTHING = "{{name}}|{{namespace}}|{{track}}|{{revision}}|{{window}}|{{workload}}"


@pytest.mark.parametrize(
    ("track", "expected"),
    [
        ("stable", "pr-reviewer|agents|stable|5d8f7c|90s|pr-reviewer-stable"),
        ("canary", "pr-reviewer|agents|canary|9a1b2e|90s|pr-reviewer-canary"),
        (Track.CANARY, "pr-reviewer|agents|canary|9a1b2e|90s|pr-reviewer-canary"),
    ],
)
def test_every_placeholder(track: str, expected: str) -> None:
    assert render_query(EVERYTHING, TARGET, track, "90s") == expected
    assert set(PLACEHOLDERS) == {
        "name",
        "namespace",
        "track",
        "revision",
        "window",
        "workload",
        "price_input",
        "price_output",
        "price_cache_read",
        "price_cache_write",
    }


def test_prices_are_usd_per_token_or_nan_without_a_table() -> None:
    prices = "{{price_input}}|{{price_output}}|{{price_cache_read}}|{{price_cache_write}}"
    assert render_query(prices, TARGET, "canary", "1m") == "NaN|NaN|NaN|NaN"
    priced = Target(**{**TARGET.__dict__, "pricing": Pricing(input=3, output=15, cache_read=0.3)})
    assert render_query(prices, priced, "canary", "1m") == "3e-06|1.5e-05|3e-07|0.0"


def test_rendering_is_plain_replacement() -> None:
    text = 'a{x="{{name}}{{name}}"} {not_a_placeholder} {{{window}}} {% raw %} ${name}'
    assert (
        render_query(text, TARGET, "canary", "1m")
        == 'a{x="pr-reviewerpr-reviewer"} {not_a_placeholder} {1m} {% raw %} ${name}'
    )


@pytest.mark.parametrize(
    ("template", "bad"),
    [
        ("x{a='{{tenant}}'}", "{{tenant}}"),
        ("x{a='{{ name }}'}", "{{ name }}"),
        ("x{a='{{Name}}'}", "{{Name}}"),
        ("x{a='{{name}'}", "{{name}'}"),
        ("{{}}", "{{}}"),
    ],
)
def test_unknown_placeholders_are_rejected(template: str, bad: str) -> None:
    assert unknown_placeholders(template) == [bad]
    with pytest.raises(AnalysisConfigError, match="unknown placeholder") as caught:
        render_query(template, TARGET, "canary", "1m")
    assert bad in str(caught.value)
    assert "{{workload}}" in str(caught.value)  # says what is allowed


def test_unknown_track_is_rejected() -> None:
    with pytest.raises(AnalysisConfigError, match="track must be stable or canary, not 'blue'"):
        render_query("x", TARGET, "blue", "1m")


# --- built-ins ---------------------------------------------------------------------------

HARNESS = 'namespace="agents",harness="pr-reviewer",track="canary",revision="9a1b2e"'
ISTIO = (
    'reporter="destination",destination_workload_namespace="agents",'
    'destination_workload="pr-reviewer-canary"'
)
GOLDEN = {
    Builtin.ERROR_RATE: (
        f'(sum(rate(harness_requests_total{{{HARNESS},outcome="error"}}[1m])) or vector(0))'
        f" / sum(rate(harness_requests_total{{{HARNESS}}}[1m]))"
    ),
    Builtin.LATENCY_P95: (
        "histogram_quantile(0.95, sum by (le)"
        f" (rate(harness_request_duration_seconds_bucket{{{HARNESS}}}[1m])))"
    ),
    Builtin.COST_PER_HOUR: f"sum(rate(harness_cost_usd_total{{{HARNESS}}}[1m])) * 3600",
    Builtin.COST_PER_REQUEST: (
        f"sum(rate(harness_cost_usd_total{{{HARNESS}}}[1m]))"
        f" / sum(rate(harness_requests_total{{{HARNESS}}}[1m]))"
    ),
    Builtin.ISTIO_ERROR_RATE: (
        f'(sum(rate(istio_requests_total{{{ISTIO},response_code=~"5.*"}}[1m])) or vector(0))'
        f" / sum(rate(istio_requests_total{{{ISTIO}}}[1m]))"
    ),
    Builtin.ISTIO_LATENCY_P95: (
        "histogram_quantile(0.95, sum by (le)"
        f" (rate(istio_request_duration_milliseconds_bucket{{{ISTIO}}}[1m])))"
    ),
    Builtin.COST_PER_TASK: (
        f"(sum(rate(harness_task_cost_usd_sum{{{HARNESS}}}[1m]))"
        f" / sum(rate(harness_task_cost_usd_count{{{HARNESS}}}[1m])))"
        f" or (sum(rate(harness_cost_usd_total{{{HARNESS}}}[1m])) or ("
        f'(sum(rate(harness_tokens_total{{{HARNESS},type="input"}}[1m])) or vector(0)) * NaN'
        f' + (sum(rate(harness_tokens_total{{{HARNESS},type="output"}}[1m])) or vector(0))'
        " * NaN"
        f' + (sum(rate(harness_tokens_total{{{HARNESS},type="cache_read"}}[1m]))'
        " or vector(0)) * NaN"
        f' + (sum(rate(harness_tokens_total{{{HARNESS},type="cache_creation"}}[1m]))'
        " or vector(0)) * NaN))"
        f" / sum(rate(harness_tasks_total{{{HARNESS}}}[1m]))"
    ),
    Builtin.OUTPUT_TOKENS_PER_TASK: (
        f"(sum(rate(harness_task_output_tokens_sum{{{HARNESS}}}[1m]))"
        f" / sum(rate(harness_task_output_tokens_count{{{HARNESS}}}[1m])))"
        f' or (sum(rate(harness_tokens_total{{{HARNESS},type="output"}}[1m])) or vector(0))'
        f" / sum(rate(harness_tasks_total{{{HARNESS}}}[1m]))"
    ),
    Builtin.TASK_ERROR_RATE: (
        f'(sum(rate(harness_tasks_total{{{HARNESS},outcome!="success",'
        'error_class!~"rate_limit|overloaded|spend_limit"}[1m])) or vector(0))'
        f" / sum(rate(harness_tasks_total{{{HARNESS}}}[1m]))"
    ),
    Builtin.UPSTREAM_ERROR_SHARE: (
        f"(sum(rate(harness_llm_errors_total{{{HARNESS},"
        'error_class=~"rate_limit|overloaded|spend_limit"}[1m])) or vector(0))'
        f" / sum(rate(harness_llm_requests_total{{{HARNESS}}}[1m]))"
    ),
    Builtin.TOOL_FAILURE_RATE: (
        f'(sum(rate(harness_tool_calls_total{{{HARNESS},outcome=~"error|timeout"}}[1m]))'
        f" or vector(0)) / sum(rate(harness_tool_calls_total{{{HARNESS}}}[1m]))"
    ),
    Builtin.TASK_LATENCY_P95: (
        "histogram_quantile(0.95, sum by (le)"
        f" (rate(harness_task_duration_seconds_bucket{{{HARNESS}}}[1m])))"
    ),
    Builtin.TIME_TO_FIRST_TOKEN_P95: (
        "histogram_quantile(0.95, sum by (le)"
        f" (rate(harness_time_to_first_token_seconds_bucket{{{HARNESS}}}[1m])))"
    ),
}


@pytest.mark.parametrize("builtin", list(Builtin))
def test_builtin_golden(builtin: Builtin) -> None:
    assert render_query(BUILTIN_QUERIES[builtin], TARGET, "canary", "1m") == GOLDEN[builtin]


def test_builtin_guards_golden() -> None:
    assert (
        render_query(HARNESS_REQUESTS_GUARD, TARGET, "canary", "1m")
        == f"sum(increase(harness_requests_total{{{HARNESS}}}[1m]))"
    )
    assert (
        render_query(ISTIO_REQUESTS_GUARD, TARGET, "canary", "1m")
        == f"sum(increase(istio_requests_total{{{ISTIO}}}[1m]))"
    )
    assert {b for b in Builtin if BUILTIN_GUARDS[b] is ISTIO_REQUESTS_GUARD} == {
        Builtin.ISTIO_ERROR_RATE,
        Builtin.ISTIO_LATENCY_P95,
    }
    assert (
        render_query(HARNESS_TASKS_GUARD, TARGET, "canary", "1m")
        == f"sum(increase(harness_tasks_total{{{HARNESS}}}[1m]))"
    )
    assert {b for b in Builtin if BUILTIN_GUARDS[b] is HARNESS_TASKS_GUARD} == {
        b for b in Builtin if b.per_task
    }


def test_stable_track_renders_the_stable_revision_and_workload() -> None:
    rendered = render_query(BUILTIN_QUERIES[Builtin.ERROR_RATE], TARGET, "stable", "1m")
    assert 'track="stable",revision="5d8f7c"' in rendered
    istio = render_query(BUILTIN_QUERIES[Builtin.ISTIO_ERROR_RATE], TARGET, "stable", "1m")
    assert 'destination_workload="pr-reviewer-stable"' in istio


def test_every_builtin_has_a_query_guard_and_unit() -> None:
    assert set(BUILTIN_QUERIES) == set(BUILTIN_GUARDS) == set(BUILTIN_UNITS) == set(Builtin)
    for query in [*BUILTIN_QUERIES.values(), *BUILTIN_GUARDS.values()]:
        assert unknown_placeholders(query) == []


def test_metrics_doc_quotes_every_builtin_verbatim() -> None:
    text = METRICS_DOC.read_text()
    for builtin, query in BUILTIN_QUERIES.items():
        assert f"`{builtin}`" in text
        assert query in text, builtin
        assert BUILTIN_UNITS[builtin] in text
    assert HARNESS_REQUESTS_GUARD in text
    assert HARNESS_TASKS_GUARD in text
    assert ISTIO_REQUESTS_GUARD in text


def test_metrics_doc_examples_are_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", METRICS_DOC.read_text(), flags=re.DOTALL)
    kinds = []
    for block in blocks:
        doc = yaml.safe_load(block)
        if doc.get("kind") == "HarnessDeployment":
            HarnessDeployment.model_validate(doc)
        elif doc.get("kind") == "HarnessAnalysisTemplate":
            HarnessAnalysisTemplate.model_validate(doc)
        elif "checks" in doc:
            AnalysisSpec.model_validate(doc)
        else:
            continue
        kinds.append(doc.get("kind", "checks"))
    assert kinds == ["HarnessDeployment", "checks", "HarnessAnalysisTemplate"]

"""The analysis API: `spec.analysis` and HarnessAnalysisTemplate parse as documented, invalid
ones are rejected naming the field, and the HarnessAnalysisTemplate CRD is structural,
documented, current and consistent with the models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from harness_operator.api import HarnessDeploymentSpec, crdgen, docs
from harness_operator.api.analysis import (
    AnalysisSpec,
    Builtin,
    Check,
    HarnessAnalysisTemplateSpec,
    OnNoData,
)
from harness_operator.api.resource import HarnessAnalysisTemplate
from harness_operator.api.schema import (
    crd,
    crds,
    openapi_schema,
    template_crd,
    template_openapi_schema,
)
from unit.schema_checks import apply_defaults, structural_problems, validate, walk

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_FILE = ROOT / "crds" / "harnessanalysistemplates.harness.dev.yaml"
IMAGE = "ghcr.io/acme/pr-reviewer:1.4.0"

BRIEF_EXAMPLE = """
prometheus: {address: http://prometheus.monitoring:9090, timeoutSeconds: 5}
window: 1m
checkInterval: 5s
failureLimit: 2
errorLimit: 3
checks:
  - name: error-rate
    builtin: errorRate
    max: 0.05
  - name: latency
    builtin: latencyP95
    max: 2.0
    relativeToStable: {max: 1.25}
  - name: cost
    builtin: costPerRequest
    relativeToStable: {max: 1.25}
  - name: custom-queue
    query: 'sum(rate(my_errors_total{namespace="{{namespace}}",harness="{{name}}",track="{{track}}"}[{{window}}]))'
    max: 1
    onNoData: fail
    minSamples:
      query: 'sum(increase(my_jobs_total{namespace="{{namespace}}",harness="{{name}}",track="{{track}}"}[{{window}}]))'
      min: 20
minRequests: 20
templates: [{name: shared-slos}]
"""  # noqa: E501

TEMPLATE_OBJECT = """
apiVersion: harness.dev/v1alpha1
kind: HarnessAnalysisTemplate
metadata: {name: shared-slos, namespace: agents}
spec:
  window: 5m
  minRequests: 50
  checks:
    - name: istio-5xx
      builtin: istioErrorRate
      max: 0.01
    - name: tool-failures
      query: 'sum(rate(harness_tool_calls_total{harness="{{name}}",track="{{track}}",outcome=~"error|timeout"}[{{window}}])) / sum(rate(harness_tool_calls_total{harness="{{name}}",track="{{track}}"}[{{window}}]))'
      max: 0.02
      relativeToStable: {max: 1.5}
"""  # noqa: E501


def analysis(raw: dict[str, Any]) -> AnalysisSpec:
    return AnalysisSpec.model_validate(raw)


def test_brief_example_parses() -> None:
    spec = analysis(yaml.safe_load(BRIEF_EXAMPLE))
    assert spec.prometheus is not None
    assert (spec.prometheus.address, spec.prometheus.timeout_seconds) == (
        "http://prometheus.monitoring:9090",
        5,
    )
    assert (spec.window, spec.check_interval, spec.check_interval_seconds) == ("1m", "5s", 5.0)
    assert (spec.failure_limit, spec.error_limit, spec.min_requests) == (2, 3, 20)
    assert spec.checks is not None
    names = [c.name for c in spec.checks]
    assert names == ["error-rate", "latency", "cost", "custom-queue"]
    latency, custom = spec.checks[1], spec.checks[3]
    assert latency.builtin is Builtin.LATENCY_P95
    assert latency.relative_to_stable is not None
    assert latency.relative_to_stable.max == 1.25
    assert custom.on_no_data is OnNoData.FAIL
    assert custom.min_samples is not None
    assert custom.min_samples.min == 20
    assert [t.name for t in spec.templates or []] == ["shared-slos"]
    assert AnalysisSpec.model_validate(spec.to_k8s()) == spec


def test_defaults() -> None:
    spec = analysis({"checks": [{"name": "e", "builtin": "errorRate", "max": 0.05}]})
    assert spec.prometheus is None
    assert (spec.window, spec.check_interval) == ("1m", "5s")
    assert (spec.failure_limit, spec.error_limit, spec.min_requests) == (2, 3, 20)
    assert spec.templates is None
    (c,) = spec.checks or []
    assert c.on_no_data is OnNoData.INCONCLUSIVE
    assert (c.window, c.min_samples, c.relative_to_stable, c.min) == (None, None, None, None)


def test_harness_deployment_carries_analysis() -> None:
    raw = {"image": IMAGE, "analysis": yaml.safe_load(BRIEF_EXAMPLE)}
    spec = HarnessDeploymentSpec.model_validate(raw)
    assert spec.analysis is not None
    assert spec.analysis.checks is not None
    assert len(spec.analysis.checks) == 4
    assert HarnessDeploymentSpec.model_validate(spec.to_k8s()) == spec
    assert HarnessDeploymentSpec.model_validate({"image": IMAGE}).analysis is None


def test_template_object_parses() -> None:
    obj = HarnessAnalysisTemplate.model_validate(yaml.safe_load(TEMPLATE_OBJECT))
    assert obj.metadata["name"] == "shared-slos"
    assert (obj.spec.window, obj.spec.min_requests) == ("5m", 50)
    assert [c.name for c in obj.spec.checks] == ["istio-5xx", "tool-failures"]
    with pytest.raises(ValidationError, match="kind HarnessAnalysisTemplate"):
        HarnessAnalysisTemplate.model_validate(
            {**yaml.safe_load(TEMPLATE_OBJECT), "kind": "HarnessDeployment"}
        )


CHECK_OK = {"name": "c", "builtin": "errorRate", "max": 0.05}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"checks": []}, "checks\n  List should have at least 1 item"),
        ({"templates": []}, "templates\n  List should have at least 1 item"),
        (
            {"checks": [{"name": "c", "builtin": "errorRate", "query": "x", "max": 1}]},
            "checks[c]: set exactly one of builtin and query",
        ),
        ({"checks": [{"name": "c", "max": 1}]}, "checks[c]: set exactly one of builtin and query"),
        (
            {"checks": [{"name": "c", "builtin": "errorRate"}]},
            "checks[c]: set at least one of min, max and relativeToStable",
        ),
        (
            {"checks": [{"name": "c", "builtin": "errorRate", "min": 2, "max": 1}]},
            "checks[c].min must be less than or equal to checks[c].max",
        ),
        (
            {"checks": [{"name": "c", "builtin": "errorRate", "relativeToStable": {}}]},
            "checks[].relativeToStable: set min, max or maxIncrease",
        ),
        (
            {"checks": [{**CHECK_OK, "relativeToStable": {"min": 2, "max": 1}}]},
            "relativeToStable.min must be less than or equal to",
        ),
        (
            {"checks": [{**CHECK_OK, "relativeToStable": {"max": -1}}]},
            "relativeToStable.max\n  Input should be greater than or equal to 0",
        ),
        (
            {"checks": [{"name": "c", "query": "x", "max": 1, "minSamples": {"min": 5}}]},
            "checks[c].minSamples.query is required when the check sets query",
        ),
        (
            {"checks": [{"name": "q", "query": 'x{a="{{tenant}}"}', "max": 1}]},
            "checks[q].query: unknown placeholder {{tenant}}; use only {{name}}",
        ),
        (
            {
                "checks": [
                    {
                        "name": "g",
                        "builtin": "errorRate",
                        "max": 1,
                        "minSamples": {"query": "{{ track }}", "min": 1},
                    }
                ]
            },
            "checks[g].minSamples.query: unknown placeholder {{ track }}",
        ),
        ({"checks": [CHECK_OK, CHECK_OK]}, "analysis.checks: duplicate names ['c']"),
        (
            {"templates": [{"name": "t"}, {"name": "t"}]},
            "analysis.templates: duplicate names ['t']",
        ),
        ({"checks": [CHECK_OK], "checkInterval": "500ms"}, "checkInterval must be at least 1s"),
        ({"checks": [CHECK_OK], "checkInterval": "5"}, "checkInterval\n  String should match"),
        ({"checks": [CHECK_OK], "window": "0s"}, "analysis.window must be at least 1s"),
        ({"checks": [{**CHECK_OK, "window": "0m"}]}, "checks[c].window must be at least 1s"),
        ({"checks": [{**CHECK_OK, "builtin": "p99"}]}, "checks.0.builtin\n  Input should be"),
        ({"checks": [{**CHECK_OK, "onNoData": "maybe"}]}, "checks.0.onNoData\n  Input should be"),
        ({"checks": [{**CHECK_OK, "name": "Error_Rate"}]}, "checks.0.name\n  String should match"),
        ({"checks": [{**CHECK_OK, "max": "inf"}]}, "checks.0.max\n  Input should be a finite"),
        ({"checks": [CHECK_OK], "failureLimit": 0}, "failureLimit\n  Input should be greater"),
        ({"checks": [CHECK_OK], "errorLimit": 0}, "errorLimit\n  Input should be greater"),
        ({"checks": [CHECK_OK], "minRequests": -1}, "minRequests\n  Input should be greater"),
        (
            {"checks": [CHECK_OK], "prometheus": {"address": "prometheus:9090"}},
            "prometheus.address\n  String should match",
        ),
        (
            {"checks": [CHECK_OK], "prometheus": {"timeoutSeconds": 0}},
            "prometheus.timeoutSeconds\n  Input should be greater",
        ),
        ({"checks": [{**CHECK_OK, "treshold": 1}]}, "checks.0.treshold\n  Extra inputs"),
        ({"checks": [CHECK_OK] * 33}, "checks\n  List should have at most 32 items"),
    ],
)
def test_invalid_analysis_names_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        analysis(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "checks\n  Field required"),
        ({"checks": []}, "checks\n  List should have at least 1 item"),
        ({"checks": [CHECK_OK, CHECK_OK]}, "spec.checks: duplicate names ['c']"),
        ({"checks": [CHECK_OK], "window": "0s"}, "spec.window must be at least 1s"),
        ({"checks": [CHECK_OK], "minRequests": -5}, "minRequests\n  Input should be greater"),
    ],
)
def test_invalid_template_names_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HarnessAnalysisTemplateSpec.model_validate(raw)
    assert message in str(caught.value)


def test_builtin_checks_may_set_only_the_guard_minimum() -> None:
    c = Check.model_validate({**CHECK_OK, "minSamples": {"min": 100}})
    assert c.min_samples is not None
    assert (c.min_samples.query, c.min_samples.min) == (None, 100)


# --- the CRDs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_schema() -> dict[str, Any]:
    return template_openapi_schema()


def test_template_schema_is_structural(template_schema: dict[str, Any]) -> None:
    assert structural_problems(template_schema) == []
    assert structural_problems(openapi_schema()) == []


def test_template_fields_are_described_and_bounded(template_schema: dict[str, Any]) -> None:
    undescribed, unbounded = [], []
    for path, node in walk(template_schema):
        if path.startswith(".spec") and not path.endswith("[]") and not node.get("description"):
            undescribed.append(path)
        kind = node.get("type")
        if kind == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(path)
        if kind == "array" and "maxItems" not in node:
            unbounded.append(path)
    assert undescribed == []
    assert [p for p in unbounded if p.startswith(".spec")] == []


def test_template_cel_rules_name_existing_fields(template_schema: dict[str, Any]) -> None:
    rules = 0
    for path, node in walk(template_schema):
        for rule in node.get("x-kubernetes-validations", []):
            rules += 1
            assert re.search(r"[a-z][A-Za-z]+(\[\])?[.:\s]", rule["message"]), rule["message"]
            if "properties" in node:
                for field in re.findall(r"self\.([A-Za-z_]\w*)\b(?!\()", rule["rule"]):
                    assert field in node["properties"], f"{path}: {rule['rule']}"
            if "fieldPath" in rule:
                assert rule["fieldPath"].lstrip(".") in node["properties"], path
    assert rules >= 9


def test_analysis_cel_rules_in_the_harness_deployment_crd() -> None:
    props = openapi_schema()["properties"]["spec"]["properties"]["analysis"]
    check = props["properties"]["checks"]["items"]
    rules = " ".join(r["rule"] for r in check["x-kubernetes-validations"])
    assert "has(self.builtin) != has(self.query)" in rules
    assert "has(self.min) || has(self.max) || has(self.relativeToStable)" in rules
    assert props["properties"]["checks"]["x-kubernetes-list-map-keys"] == ["name"]
    assert props["properties"]["templates"]["x-kubernetes-list-map-keys"] == ["name"]
    spec_rules = " ".join(
        r["rule"] for r in openapi_schema()["properties"]["spec"]["x-kubernetes-validations"]
    )
    assert "has(self.analysis.checks) || has(self.analysis.templates)" in spec_rules
    query = check["properties"]["query"]["x-kubernetes-validations"][0]["rule"]
    assert ".replace('{{workload}}', '')" in query
    interval = props["properties"]["checkInterval"]["x-kubernetes-validations"][0]["rule"]
    assert "duration(self) >= duration('1s')" in interval


def test_template_crd_names_scope_and_columns() -> None:
    manifest = template_crd()
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == "harnessanalysistemplates.harness.dev"
    assert spec["names"] == {
        "kind": "HarnessAnalysisTemplate",
        "listKind": "HarnessAnalysisTemplateList",
        "plural": "harnessanalysistemplates",
        "singular": "harnessanalysistemplate",
        "shortNames": ["hat"],
        "categories": ["harness"],
    }
    assert spec["scope"] == "Namespaced"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert "subresources" not in version
    assert "status" not in version["schema"]["openAPIV3Schema"]["properties"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Checks", "Window", "Age"]
    assert [m["metadata"]["name"] for m in crds()] == [
        "harnessdeployments.harness.dev",
        "harnessanalysistemplates.harness.dev",
    ]


def test_objects_validate_against_the_schemas(template_schema: dict[str, Any]) -> None:
    template = yaml.safe_load(TEMPLATE_OBJECT)
    assert validate(template, template_schema) == []
    assert validate(apply_defaults(template, template_schema), template_schema) == []
    hd = {
        "apiVersion": "harness.dev/v1alpha1",
        "kind": "HarnessDeployment",
        "metadata": {"name": "pr-reviewer"},
        "spec": {"image": IMAGE, "analysis": yaml.safe_load(BRIEF_EXAMPLE)},
    }
    schema = openapi_schema()
    assert validate(hd, schema) == []
    assert validate(apply_defaults(hd, schema), schema) == []
    bad = {**template, "spec": {"checks": [{"name": "c", "builtin": "nope", "max": "x"}]}}
    errors = validate(bad, template_schema)
    assert any("builtin: not one of" in e for e in errors)
    assert any("max: expected number" in e for e in errors)


@pytest.mark.parametrize(
    "raw",
    [
        {"templates": [{"name": "t"}]},
        {"checks": [{"name": "c", "query": "x", "max": 1, "minSamples": {"query": "y", "min": 1}}]},
        {"prometheus": {}, "checks": [{**CHECK_OK, "relativeToStable": {"max": 1.25}}]},
    ],
)
def test_schema_defaults_agree_with_model_defaults(raw: dict[str, Any]) -> None:
    spec_schema = openapi_schema()["properties"]["spec"]
    full = {"image": IMAGE, "analysis": raw}
    stored = apply_defaults(full, spec_schema)
    assert HarnessDeploymentSpec.model_validate(stored) == HarnessDeploymentSpec.model_validate(
        full
    )
    template_spec = template_openapi_schema()["properties"]["spec"]
    t = {"checks": [CHECK_OK]}
    assert HarnessAnalysisTemplateSpec.model_validate(
        apply_defaults(t, template_spec)
    ) == HarnessAnalysisTemplateSpec.model_validate(t)


# --- generated files ---------------------------------------------------------------------


def test_committed_template_crd_is_current() -> None:
    assert TEMPLATE_FILE.read_text() == crdgen.crd_yaml(template_crd())
    assert yaml.safe_load(TEMPLATE_FILE.read_text()) == template_crd()
    assert crdgen.crd_yaml() == crdgen.crd_yaml(crd())


def test_check_fails_on_a_stale_template_crd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.run(tmp_path) == 0
    assert crdgen.run(tmp_path, check=True) == 0
    copy = tmp_path / TEMPLATE_FILE.name
    copy.write_text(copy.read_text().replace("- hat\n", "- hatx\n"))
    assert crdgen.run(tmp_path, check=True) == 1
    err = capsys.readouterr().err
    assert f"{copy} is stale; regenerate it with `make crds`" in err
    copy.unlink()
    assert crdgen.run(tmp_path, check=True) == 1
    assert "is missing" in capsys.readouterr().err


def test_write_writes_both_crds(tmp_path: Path) -> None:
    assert crdgen.run(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "harnessanalysistemplates.harness.dev.yaml",
        "harnessdeployments.harness.dev.yaml",
    ]
    assert (tmp_path / TEMPLATE_FILE.name).read_text() == TEMPLATE_FILE.read_text()


def test_docs_cover_the_template_and_analysis() -> None:
    text = docs.api_markdown()
    template_part = text[text.index("# HarnessAnalysisTemplate API reference") :]
    assert '<a id="hat-spec-checks"></a>' in template_part
    assert "[object](#hat-spec-checks-relativetostable)" in template_part
    for path, node in walk(template_openapi_schema()):
        if path.startswith(".spec.") and not path.endswith("[]"):
            assert f"| `{path.rsplit('.', 1)[1]}` |" in template_part, path
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"] in template_part
    assert '<a id="spec-analysis-checks"></a>' in text
    assert "`hat`" in template_part

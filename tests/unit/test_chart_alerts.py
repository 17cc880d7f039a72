"""The chart's alerts, as `helm template` renders them, pass `promtool check rules` and fire
(and stay quiet) as tests/unit/chart_alerts_test.yaml says, under `promtool test rules`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import localcluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "harness-operator"
RULE_TESTS = Path(__file__).with_name("chart_alerts_test.yaml")
HELM = localcluster.HELM
PROMTOOL = localcluster.PROMETHEUS.with_name("promtool")

pytestmark = pytest.mark.skipif(
    not (HELM.exists() and PROMTOOL.exists()),
    reason=f"helm or promtool not present yet ({HELM}, {PROMTOOL}): run `make build`",
)


def rendered_rules(*values: str) -> dict[str, Any]:
    """The PrometheusRule's spec (a Prometheus rules file) for release `harness-operator`."""
    proc = subprocess.run(
        [
            str(HELM),
            "template",
            "harness-operator",
            str(CHART),
            "--show-only",
            "templates/prometheusrule.yaml",
            "--set",
            "prometheusRule.enabled=true",
            *[arg for value in values for arg in ("--set", value)],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"HOME": os.environ.get("TMPDIR", "/tmp"), "PATH": "/usr/bin:/bin"},
    )
    spec: dict[str, Any] = yaml.safe_load(proc.stdout)["spec"]
    return spec


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rendered_rules(), sort_keys=False, width=1000))
    return path


def test_rules_pass_promtool_check(rules_file: Path) -> None:
    proc = promtool("check", "rules", str(rules_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout


def test_alerts_fire_as_specified(rules_file: Path) -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(rules_file)]
    run = rules_file.with_name("alerts_test.yaml")
    run.write_text(yaml.safe_dump(tests, sort_keys=False, width=1000))
    proc = promtool("test", "rules", str(run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_is_tested() -> None:
    alerts = {r["alert"] for g in rendered_rules()["groups"] for r in g["rules"]}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert alerts == tested
    assert {
        "HarnessReleaseRolledBack",
        "HarnessReleaseStuck",
        "HarnessOperatorDown",
        "HarnessOperatorNotReconciling",
        "HarnessModelCredentialRefused",
    } <= alerts


def test_the_stuck_threshold_is_configurable() -> None:
    rules = rendered_rules("prometheusRule.releaseStuckFor=3h")
    stuck = next(
        r for g in rules["groups"] for r in g["rules"] if r["alert"] == "HarnessReleaseStuck"
    )
    assert stuck["for"] == "3h"
    assert "more than 3h" in stuck["annotations"]["summary"]


DASHBOARD = CHART / "files" / "dashboards" / "harness-operator.json"
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$job": "harness-operator-metrics",
    "$namespace": ".*",
    "$name": ".*",
}


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query (Grafana's variables filled in) as a recording
    rule."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets") or []]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    rules = []
    for index, expr in enumerate(exprs):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        if expr.startswith("label_values("):  # Grafana's function: check its selector
            expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(rules) >= 20

"""The Argo CD health check the chart ships (charts/harness-operator/argocd/health.lua), run
in real Lua 5.1 on every object of its `health_test.yaml`, the way Argo CD's own test runs
its bundled checks; the fixtures and the docs are kept in step with the script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from argocd import ARGOCD_DIR, BEGIN, CONFIG_KEY, DOC, END, HEALTH_LUA, argocd_cm, health

CASES: list[dict[str, Any]] = yaml.safe_load((ARGOCD_DIR / "health_test.yaml").read_text())["tests"]


def load(input_path: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((ARGOCD_DIR / input_path).read_text())
    return obj


@pytest.mark.parametrize("case", [pytest.param(c, id=Path(c["inputPath"]).stem) for c in CASES])
def test_each_fixture_gets_the_health_its_test_case_names(case: dict[str, Any]) -> None:
    expected = case["healthStatus"]
    assert health(load(case["inputPath"])) == (expected["status"], expected.get("message", ""))


def test_every_fixture_is_listed_once_and_every_listed_one_exists() -> None:
    listed = [c["inputPath"] for c in CASES]
    present = sorted(f"testdata/{p.name}" for p in (ARGOCD_DIR / "testdata").glob("*.yaml"))
    assert len(listed) == len(set(listed)), "a fixture is listed twice"
    assert sorted(listed) == present


def test_the_fixtures_cover_every_status_argo_cd_is_told_about() -> None:
    assert {c["healthStatus"]["status"] for c in CASES} == {
        "Healthy",
        "Progressing",
        "Degraded",
        "Suspended",
    }


def test_the_fixtures_are_harness_deployments_as_the_apiserver_returns_them() -> None:
    for case in CASES:
        obj = load(case["inputPath"])
        assert (obj["apiVersion"], obj["kind"]) == ("harness.dev/v1alpha1", "HarnessDeployment")
        assert {"name", "namespace", "uid", "generation"} <= set(obj["metadata"]), case
        assert "managedFields" not in obj["metadata"], case


def test_the_script_needs_no_standard_library() -> None:
    """Argo CD runs custom checks without the standard libraries unless told otherwise:
    the sandbox in tests/argocd.py removes them, and it really does."""
    with pytest.raises(Exception, match="string"):
        health({"metadata": {}}, 'return {status = string.lower("Healthy")}')
    with pytest.raises(Exception, match="index"):
        health({"metadata": {}}, 'local s = "Healthy"; return {status = s:lower()}')


def test_an_unknown_status_reads_as_unknown_as_in_argo_cd() -> None:
    assert health({"metadata": {}}, 'return {status = "Fine"}') == (
        "Unknown",
        "Lua returned an invalid health status",
    )


def test_the_docs_inline_exactly_the_script() -> None:
    text = DOC.read_text()
    assert text.count(BEGIN) == 1
    assert text.count(END) == 1
    assert argocd_cm() in text, "run `.venv/bin/python tests/argocd.py` to update docs/gitops.md"
    block = text[text.index(BEGIN) : text.index(END)].split("```yaml\n", 1)[1].split("```")[0]
    assert yaml.safe_load(block)["data"][CONFIG_KEY] == HEALTH_LUA.read_text()

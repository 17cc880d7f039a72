"""`kubectl harness watch`: exit codes and output for scripted sequences of statuses, on a
fake clock (no sleeping)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from harness_operator.cli.plugin import WATCH_INTERVAL, Deps, cli

NS, NAME = "agents", "pr-reviewer"
START = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def now(self) -> datetime:
        return START + timedelta(seconds=self.t - 1000.0)


class ScriptedKube:
    """Returns the scripted objects one read after another, then the last one forever.
    An entry that is an exception is raised instead."""

    def __init__(self, *script: dict[str, Any] | Exception | None) -> None:
        self.script = list(script)
        self.reads = 0

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        entry = self.script[min(self.reads, len(self.script) - 1)]
        self.reads += 1
        if isinstance(entry, Exception):
            raise entry
        return copy.deepcopy(entry)

    def list(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise AssertionError("not used")

    def patch_metadata(self, *args: Any) -> dict[str, Any]:
        raise AssertionError("watch never writes")


def hd(phase: str | None, generation: int = 2, observed: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": NAME, "namespace": NS, "generation": generation},
        "spec": {"image": "x", "rollout": {"steps": [{"weight": w} for w in (10, 50)]}},
        "status": {"phase": phase, "observedGeneration": observed, **status},
    }


def step(index: int, weight: int, **status: Any) -> dict[str, Any]:
    return hd("Progressing", currentStep=index, canaryWeight=weight, **status)


def watch(kube: ScriptedKube, *args: str, tty: bool = False) -> tuple[Result, Clock]:
    clock = Clock()
    deps = Deps(
        make_kube=lambda kubeconfig, context: kube,
        default_namespace=lambda kubeconfig, context: NS,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        now=clock.now,
        isatty=lambda stream: tty,
    )
    result = CliRunner().invoke(cli, ["watch", NAME, *args], obj=deps)
    return result, clock


RELEASE = (
    hd("Ready", generation=3, observed=2),  # applied; the operator has not seen it yet
    step(0, 10),
    step(0, 10),  # no change: no line
    step(1, 50),
    step(1, 50, failedChecks=1),
    hd("Promoting", canaryWeight=50),
    hd("Finalising", canaryWeight=0),
    hd("Ready", stableRevision="bbbb", canaryRevision="bbbb"),
)


def test_a_successful_release_exits_0_with_one_line_per_change() -> None:
    result, clock = watch(ScriptedKube(*RELEASE))
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert "\x1b[" not in result.output
    assert out[0] == "12:00:00 Ready | weight 0% | generation 3 not yet observed"
    assert out[1] == "12:00:00 Progressing | step 1/2 | weight 10% | failed 0/2 | errors 0/3"
    assert out[2] == "12:00:01 Progressing | step 2/2 | weight 50% | failed 0/2 | errors 0/3"
    assert out[3].endswith("Progressing | step 2/2 | weight 50% | failed 1/2 | errors 0/3")
    assert out[4].endswith("Promoting | weight 50% | failed 0/2 | errors 0/3")
    assert out[5].endswith("Finalising | weight 0% | failed 0/2 | errors 0/3")
    assert out[6].endswith(" Ready | weight 0%")
    assert out[7] == "agents/pr-reviewer is Ready on revision bbbb"
    assert len(out) == 8
    assert clock.sleeps == [WATCH_INTERVAL] * 7


def test_a_rolled_back_release_exits_2() -> None:
    rolled_back = hd(
        "RolledBack",
        rollback={"reason": "AnalysisFailed", "check": "error-rate", "value": 0.2, "max": 0.05},
    )
    result, _ = watch(ScriptedKube(step(0, 10), rolled_back))
    assert result.exit_code == 2, result.output
    assert "agents/pr-reviewer is RolledBack: AnalysisFailed (check error-rate)" in result.output


def test_failed_exits_2() -> None:
    result, _ = watch(ScriptedKube(hd("Failed", message="Secret api-key is missing")))
    assert result.exit_code == 2
    assert "is Failed: Secret api-key is missing" in result.output


def test_ready_and_up_to_date_exits_at_once() -> None:
    kube = ScriptedKube(hd("Ready"))
    result, clock = watch(kube)
    assert result.exit_code == 0
    assert kube.reads == 1
    assert clock.sleeps == []


def test_a_stale_rolled_back_status_is_not_the_end() -> None:
    result, _ = watch(
        ScriptedKube(hd("RolledBack", generation=4, observed=3), step(0, 10)), "--timeout", "5"
    )
    assert result.exit_code == 3, result.output


def test_timeout_exits_3() -> None:
    kube = ScriptedKube(step(0, 10))
    result, clock = watch(kube, "--timeout", "30")
    assert result.exit_code == 3, result.output
    assert clock.t - 1000.0 == pytest.approx(30.0)
    assert kube.reads == 61
    assert "timed out after 30s: agents/pr-reviewer is Progressing" in result.output
    assert len(result.output.splitlines()) == 2  # one state line, then the verdict


def test_api_errors_are_ridden_out() -> None:
    kube = ScriptedKube(step(0, 10), ConnectionError("connection refused"), hd("Ready"))
    result, _ = watch(kube)
    assert result.exit_code == 0, result.output
    assert "cannot read agents/pr-reviewer: connection refused; retrying" in result.output


def test_deleted_while_watching_exits_1() -> None:
    result, _ = watch(ScriptedKube(step(0, 10), None))
    assert result.exit_code == 1
    assert "harnessdeployment agents/pr-reviewer was deleted" in result.output


def test_missing_from_the_start_exits_1() -> None:
    result, _ = watch(ScriptedKube(None))
    assert result.exit_code == 1
    assert 'harnessdeployment "pr-reviewer" not found in namespace "agents"' in result.output


@pytest.mark.parametrize(
    ("script", "code"),
    [
        (RELEASE, 0),
        ((step(0, 10), hd("RolledBack")), 2),
        ((step(0, 10),), 3),
    ],
)
def test_on_a_terminal_the_panel_is_redrawn_with_the_same_exit_codes(
    script: tuple[dict[str, Any], ...], code: int
) -> None:
    result, _ = watch(ScriptedKube(*script), "--timeout", "10", tty=True)
    assert result.exit_code == code, result.output
    assert "\x1b[" in result.output  # colours and cursor movement
    assert "agents/pr-reviewer" in result.output
    assert "watching agents/pr-reviewer" in result.output


@pytest.mark.parametrize(
    "args", [["watch", NAME, "--timeout", "0"], ["watch"], ["wacth", NAME], ["--nope", "watch"]]
)
def test_usage_errors_exit_1_not_2(args: list[str]) -> None:
    # 2 means "the release failed" to scripts; a typo must not look like that.
    result = CliRunner().invoke(cli, args, obj=Deps(default_namespace=lambda k, c: NS))
    assert result.exit_code == 1, result.output
    assert "Usage:" in result.output or "Error" in result.output

"""`kubectl harness` commands against a fake Kube: status, list and the control annotations."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from harness_operator.cli import plugin
from harness_operator.cli.plugin import Deps, cli, kubeconfig_namespace, make_kube
from harness_operator.kube.client import Kube

NS = "agents"
NANOS = 1_777_000_000_123_456_789


class FakeKube:
    """HarnessDeployments by (namespace, name); records metadata patches."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_patch = False

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        assert (api_version, kind) == ("harness.dev/v1alpha1", "HarnessDeployment")
        obj = self.objects.get((namespace or "", name))
        return copy.deepcopy(obj)

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (ns, _), o in self.objects.items() if namespace in (None, ns)]

    def patch_metadata(
        self, api_version: str, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        if self.fail_patch:
            raise PermissionError("forbidden")
        self.patches.append((namespace, name, metadata))
        return self.objects[(namespace, name)]


def hd(name: str = "pr-reviewer", namespace: str = NS, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "harness.dev/v1alpha1",
        "kind": "HarnessDeployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "creationTimestamp": "2026-05-01T10:00:00Z",
        },
        "spec": {"image": "ghcr.io/acme/pr-reviewer:1.5.0"},
        "status": {"observedGeneration": 1, **status},
    }


def invoke(kube: FakeKube, *args: str, namespace: str = NS, **deps: Any) -> Result:
    made: list[tuple[str | None, str | None]] = []

    def make(kubeconfig: str | None, context: str | None) -> FakeKube:
        made.append((kubeconfig, context))
        return kube

    obj = Deps(
        make_kube=make,
        default_namespace=lambda kubeconfig, context: namespace,
        time_ns=lambda: NANOS,
        **deps,
    )
    return CliRunner().invoke(cli, list(args), obj=obj)


PROGRESSING = hd(phase="Progressing", canaryWeight=10, currentStep=0, stableRevision="aaaa")


# --- status --------------------------------------------------------------------------------


def test_status_prints_the_panel_without_colour() -> None:
    result = invoke(FakeKube(PROGRESSING), "status", "pr-reviewer")
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
    assert "agents/pr-reviewer" in result.output
    assert "Progressing" in result.output
    assert "step 1/5" in result.output


def test_status_json_prints_the_raw_status() -> None:
    result = invoke(FakeKube(PROGRESSING), "status", "pr-reviewer", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == PROGRESSING["status"]


def test_status_of_a_missing_harness_fails() -> None:
    result = invoke(FakeKube(), "status", "nope")
    assert result.exit_code == 1
    assert 'harnessdeployment "nope" not found in namespace "agents"' in result.output


def test_namespace_option_wins_over_the_kubeconfig() -> None:
    other = hd(namespace="team-b", phase="Ready")
    result = invoke(FakeKube(other), "-n", "team-b", "status", "pr-reviewer")
    assert result.exit_code == 0, result.output
    assert "team-b/pr-reviewer" in result.output


def test_an_unreadable_kubeconfig_fails_clearly() -> None:
    def broken(kubeconfig: str | None, context: str | None) -> FakeKube:
        raise ValueError("Invalid kube-config file. No configuration found.")

    obj = Deps(make_kube=broken, default_namespace=lambda k, c: "default")
    result = CliRunner().invoke(cli, ["status", "x"], obj=obj)
    assert result.exit_code == 1
    assert "cannot load the Kubernetes configuration: Invalid kube-config" in result.output
    assert "cannot read" not in result.output


def test_an_api_error_fails_clearly() -> None:
    class ForbiddenError(Exception):
        status = 403
        reason = "Forbidden"

    kube = FakeKube()

    def get(*args: Any) -> None:
        raise ForbiddenError("a long body")

    kube.get = get  # type: ignore[method-assign,assignment]
    result = invoke(kube, "status", "pr-reviewer")
    assert result.exit_code == 1
    assert "cannot read harnessdeployment agents/pr-reviewer: 403 Forbidden" in result.output


# --- list ----------------------------------------------------------------------------------


def test_list_in_the_namespace() -> None:
    kube = FakeKube(PROGRESSING, hd("other", "team-b", phase="Ready"))
    result = invoke(kube, "list")
    assert result.exit_code == 0, result.output
    assert "pr-reviewer" in result.output
    assert "Progressing" in result.output
    assert "other" not in result.output


def test_list_all_namespaces() -> None:
    kube = FakeKube(PROGRESSING, hd("other", "team-b", phase="Ready"))
    result = invoke(kube, "list", "-A")
    assert result.exit_code == 0, result.output
    assert "NAMESPACE" in result.output
    assert "team-b" in result.output
    assert "other" in result.output


def test_list_nothing() -> None:
    result = invoke(FakeKube(), "list")
    assert result.output == 'No HarnessDeployments in namespace "agents".\n'


# --- the control annotations ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "annotation", "value"),
    [
        (["promote"], {"phase": "Progressing"}, "harness.dev/promote", f"step@{NANOS}"),
        (["promote", "--full"], {"phase": "Progressing"}, "harness.dev/promote", f"full@{NANOS}"),
        (["promote"], {"phase": "Paused", "paused": True}, "harness.dev/promote", f"step@{NANOS}"),
        (["abort"], {"phase": "Progressing"}, "harness.dev/abort", str(NANOS)),
        (["abort"], {"phase": "Paused"}, "harness.dev/abort", str(NANOS)),
        (["abort"], {"phase": "Promoting"}, "harness.dev/abort", str(NANOS)),
        (["retry"], {"phase": "RolledBack"}, "harness.dev/retry", str(NANOS)),
        (["pause"], {"phase": "Progressing"}, "harness.dev/pause", str(NANOS)),
        (["resume"], {"phase": "Paused", "paused": True}, "harness.dev/resume", str(NANOS)),
        (["resume"], {"phase": "Progressing", "paused": True}, "harness.dev/resume", str(NANOS)),
    ],
)
def test_actions_set_their_annotation(
    args: list[str], status: dict[str, Any], annotation: str, value: str
) -> None:
    kube = FakeKube(hd(**status))
    result = invoke(kube, *args, "pr-reviewer")
    assert result.exit_code == 0, result.output
    assert kube.patches == [(NS, "pr-reviewer", {"annotations": {annotation: value}})]
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert "requested for harnessdeployment agents/pr-reviewer" in lines[0]
    assert f"{annotation}={value}" in lines[0]


@pytest.mark.parametrize(
    ("args", "status", "why"),
    [
        (["promote"], {"phase": "Ready"}, "no release is in flight (phase Ready)"),
        (["promote"], {"phase": "Promoting"}, "it is already Promoting"),
        (["abort"], {"phase": "RolledBack"}, "no release is in flight (phase RolledBack)"),
        (["abort"], {"phase": "Finalising"}, "stable already runs the new revision"),
        (["retry"], {"phase": "Progressing"}, "it is Progressing, not RolledBack"),
        (["retry"], {}, "it is in an unknown phase, not RolledBack"),
        (["pause"], {"phase": "Ready"}, "only a Progressing release can be paused"),
        (["pause"], {"phase": "Progressing", "paused": True}, "it is already paused"),
        (["resume"], {"phase": "Progressing"}, "it is not paused (phase Progressing)"),
    ],
)
def test_actions_that_make_no_sense_are_refused_unless_forced(
    args: list[str], status: dict[str, Any], why: str
) -> None:
    kube = FakeKube(hd(**status))
    refused = invoke(kube, *args, "pr-reviewer")
    assert refused.exit_code == 1
    assert f"cannot {args[0]} harnessdeployment agents/pr-reviewer: " in refused.output
    assert why in refused.output
    assert "--force" in refused.output
    assert kube.patches == []

    forced = invoke(kube, *args, "pr-reviewer", "--force")
    assert forced.exit_code == 0, forced.output
    assert len(kube.patches) == 1
    assert f"despite: {why}" in forced.output


@pytest.mark.parametrize("action", ["promote", "abort", "retry", "pause", "resume"])
def test_actions_on_a_missing_harness_fail(action: str) -> None:
    kube = FakeKube()
    result = invoke(kube, action, "nope", "--force")
    assert result.exit_code == 1
    assert 'harnessdeployment "nope" not found' in result.output
    assert kube.patches == []


def test_a_failed_patch_fails_clearly() -> None:
    kube = FakeKube(hd(phase="RolledBack"))
    kube.fail_patch = True
    result = invoke(kube, "retry", "pr-reviewer")
    assert result.exit_code == 1
    assert "cannot annotate harnessdeployment agents/pr-reviewer: forbidden" in result.output


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("status", "watch", "list", "promote", "abort", "retry", "pause", "resume"):
        assert command in result.output


def test_main_is_the_console_script(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(plugin, "cli", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(plugin.sys, "argv", ["kubectl-harness", "status", "web", "-n", "agents"])
    plugin.main()
    assert calls == [{"args": ["-n", "agents", "status", "web"], "prog_name": "kubectl harness"}]


# --- the real kubeconfig handling -----------------------------------------------------------


def write_kubeconfig(path: Path, current: str = "dev") -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": current,
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {
                        "name": "dev",
                        "context": {"cluster": "c", "user": "u", "namespace": "agents"},
                    },
                    {"name": "bare", "context": {"cluster": "c", "user": "u"}},
                ],
            }
        )
    )
    return path


def test_namespace_from_the_kubeconfig_context(tmp_path: Path) -> None:
    config = str(write_kubeconfig(tmp_path / "config"))
    assert kubeconfig_namespace(config, None) == "agents"
    assert kubeconfig_namespace(config, "bare") == "default"
    assert kubeconfig_namespace(config, "missing") == "default"
    assert kubeconfig_namespace(str(tmp_path / "absent"), None) == "default"


def test_make_kube_reads_the_given_kubeconfig(tmp_path: Path) -> None:
    config = str(write_kubeconfig(tmp_path / "config"))
    kube = make_kube(config, "bare")
    assert isinstance(kube, Kube)
    assert kube.api.configuration.host == "https://127.0.0.1:6443"


def test_default_deps_resolve_the_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config")))
    seen: list[str] = []

    @cli.command("probe-namespace")
    @click.pass_obj
    def probe(session: plugin.Session) -> None:
        seen.append(session.namespace)

    try:
        result = CliRunner().invoke(cli, ["probe-namespace"])
    finally:
        cli.commands.pop("probe-namespace")
    assert result.exit_code == 0, result.output
    assert seen == ["agents"]


def test_global_options_work_after_the_command() -> None:
    from harness_operator.cli.plugin import hoist_global_options

    assert hoist_global_options(["status", "web", "-n", "agents", "-o", "json"]) == [
        "-n",
        "agents",
        "status",
        "web",
        "-o",
        "json",
    ]
    assert hoist_global_options(["promote", "--full", "web", "--namespace=a", "-nb"]) == [
        "--namespace=a",
        "-nb",
        "promote",
        "--full",
        "web",
    ]
    assert hoist_global_options(["abort", "web", "--kubeconfig", "/k", "--context", "c"]) == [
        "--kubeconfig",
        "/k",
        "--context",
        "c",
        "abort",
        "web",
    ]
    assert hoist_global_options(["status", "--", "-n"]) == ["status", "--", "-n"]

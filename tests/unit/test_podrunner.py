"""The pod runner's translation of a pod into a `podman run` (pure: no podman, no cluster):
what the container gets is exactly what the pod spec says, plus the one documented
substitution of a loopback port for the pod's own IP."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.naming import Track
from harness_operator.render import HarnessRef, ReleaseState, render_deployment
from podrunner import ContainerPlan, PlanError, container_name, container_plan

HD = HarnessRef(name="agent", namespace="agents", uid="u1")
SECRET = {
    "kind": "Secret",
    "data": {
        "api-key": base64.b64encode(b"sk-test-key").decode(),
        "sa.json": base64.b64encode(b'{"type": "service_account"}').decode(),
    },
}
PROMPTS = {"kind": "ConfigMap", "data": {"v2": "Be brief."}, "binaryData": {}}


def lookup(kind: str, name: str) -> dict[str, Any] | None:
    return {("Secret", "model-key"): SECRET, ("ConfigMap", "prompts"): PROMPTS}.get((kind, name))


def pod_of(spec: dict[str, Any]) -> dict[str, Any]:
    """A pod as the apiserver would hold it, from the operator's real rendering."""
    parsed = HarnessDeploymentSpec.model_validate(spec)
    deployment = render_deployment(HD, parsed, ReleaseState.at_rest(parsed), Track.STABLE)
    template = deployment["spec"]["template"]
    return {
        "metadata": {
            "name": "agent-stable-abc12",
            "namespace": "agents",
            "uid": "p1",
            **template["metadata"],
        },
        "spec": {**template["spec"], "nodeName": "kwok-node-0"},
    }


MODEL = {
    "provider": "anthropic",
    "name": "claude-sonnet-4-6",
    "credentials": {"secretRef": {"name": "model-key", "key": "api-key"}},
    "systemPromptRef": {"name": "prompts", "key": "v2"},
}


def plan(spec: dict[str, Any], port: int = 41000) -> ContainerPlan:
    return container_plan(pod_of(spec), lookup, "localhost/harness-app:abc", port)


def test_env_is_resolved_from_the_real_objects() -> None:
    env = plan(
        {
            "image": "localhost/harness-app:1.0",
            "model": MODEL,
            "env": [
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {
                    "name": "TRACK",
                    "valueFrom": {
                        "fieldRef": {"fieldPath": "metadata.labels['harness.dev/track']"}
                    },
                },
                {"name": "LITERAL", "value": "x"},
            ],
        }
    ).env
    assert env["ANTHROPIC_API_KEY"] == "sk-test-key"
    assert env["ANTHROPIC_MODEL"] == "claude-sonnet-4-6"
    assert env["HARNESS_SYSTEM_PROMPT_FILE"] == "/var/run/harness/prompt/system-prompt.txt"
    assert (env["POD"], env["IP"], env["TRACK"], env["LITERAL"]) == (
        "agent-stable-abc12",
        "127.0.0.1",
        "stable",
        "x",
    )


def test_the_pod_ip_becomes_a_loopback_port() -> None:
    env = plan({"image": "localhost/harness-app:1.0", "port": 8000}, port=41234).env
    assert (env["HARNESS_HOST"], env["HARNESS_PORT"], env["HARNESS_METRICS_PORT"]) == (
        "127.0.0.1",
        "41234",
        "41234",
    )


def test_volumes_become_files_and_tmpfs(tmp_path: Path) -> None:
    result = plan({"image": "localhost/harness-app:1.0", "model": MODEL})
    assert result.files == {
        "/var/run/harness/prompt": {"system-prompt.txt": b"Be brief."},
        "/var/run/harness/controls": {},  # optional, and not written yet
    }
    assert result.tmpfs == {"/tmp": "1g"}
    result.write_files(tmp_path)
    argv = result.argv(tmp_path)
    assert f"{tmp_path / '1'}:/var/run/harness/prompt:ro" in argv
    assert (tmp_path / "1" / "system-prompt.txt").read_text() == "Be brief."


def test_vertex_key_file_is_mounted() -> None:
    model = {
        "provider": "vertex",
        "name": "claude-sonnet-4-6",
        "region": "us-east5",
        "credentials": {"secretRef": {"name": "model-key", "key": "sa.json"}},
    }
    result = plan({"image": "localhost/harness-app:1.0", "model": model})
    assert result.files["/var/run/harness/model"] == {
        "credentials.json": b'{"type": "service_account"}'
    }
    assert result.env["GOOGLE_APPLICATION_CREDENTIALS"] == (
        "/var/run/harness/model/credentials.json"
    )


def test_security_context_and_command_as_rendered() -> None:
    result = plan(
        {"image": "localhost/harness-app:1.0", "command": ["/bin/app"], "args": ["--fast"]}
    )
    argv = result.argv(Path("/x"))
    assert {"--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"} <= set(argv)
    assert argv[argv.index("--entrypoint") + 1] == '["/bin/app"]'
    assert argv[-2:] == ["localhost/harness-app:abc", "--fast"]
    assert argv[argv.index("--network") : argv.index("--network") + 2] == ["--network", "host"]
    assert result.user is None, "the image's user, as the pod sets none"


def test_a_missing_required_reference_is_not_run() -> None:
    model = {**MODEL, "credentials": {"secretRef": {"name": "absent", "key": "k"}}}
    with pytest.raises(PlanError, match="Secret absent"):
        plan({"image": "localhost/harness-app:1.0", "model": model})


def test_an_optional_missing_reference_is_skipped() -> None:
    env = plan(
        {
            "image": "localhost/harness-app:1.0",
            "env": [
                {
                    "name": "MAYBE",
                    "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
                }
            ],
        }
    ).env
    assert "MAYBE" not in env


def test_container_names_are_valid() -> None:
    assert container_name("t-ns", "agent-stable-abc12") == "hrun-t-ns-agent-stable-abc12"
    assert len(container_name("n" * 63, "p" * 253)) <= 200


def test_only_the_pods_volumes_are_writable() -> None:
    argv = plan({"image": "localhost/harness-app:1.0"}).argv(Path("/x"))
    # podman's --read-only alone adds writable /run, /tmp and /var/tmp; a kubelet does not.
    assert argv[argv.index("--read-only") + 1] == "--read-only-tmpfs=false"
    assert argv[argv.index("--tmpfs") + 1] == "/tmp:rw,size=1g"


def test_containers_are_labelled_for_their_namespace() -> None:
    labels = plan({"image": "localhost/harness-app:1.0"}).labels
    assert labels == {
        "harness.dev/testbed": "podrunner",
        "harness.dev/pod": "agents/agent-stable-abc12",
        "harness.dev/namespace": "agents",
    }

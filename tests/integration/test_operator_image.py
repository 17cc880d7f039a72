"""The operator image, built from the repository's Dockerfile and run the way the Helm chart
runs it: the container's command, args, env, user, read-only root and writable /tmp are
taken from `helm template`'s Deployment, the credentials are a token of the chart's own
ServiceAccount mounted where a kubelet mounts it (so it runs under the chart's RBAC), and it
must reconcile a HarnessDeployment and serve /healthz and /metrics.

The one substitution, as for the harness pods (cluster/podrunner.py): the container shares
the host's network, so the addresses the chart binds on all interfaces (`0.0.0.0:8080`,
`0.0.0.0:9100`) become free loopback ports, and the in-cluster API address is the test
bed's apiserver on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import images
import localcluster
from scenarios import Harnesses, Kubectl
from testbed import eventually, free_port

pytestmark = pytest.mark.usefixtures("crds")

CHART = Path(__file__).resolve().parents[2] / "charts" / "harness-operator"


@pytest.fixture(scope="module")
def operator_image() -> str:
    return images.operator_image()


def helm_template(
    testbed: localcluster.State, namespace: str, *values: str
) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [
            testbed.helm,
            "template",
            "harness-operator",
            str(CHART),
            "--namespace",
            namespace,
            *[arg for value in values for arg in ("--set", value)],
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"HOME": "/tmp", "PATH": "/usr/bin:/bin"},
    )
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def service_account_files(
    core: client.CoreV1Api, namespace: str, account: str, kubeconfig: str, into: Path
) -> Path:
    """What a kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount."""
    token = core.create_namespaced_service_account_token(
        account,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    config = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = Path(cluster["certificate-authority"]).read_bytes()
    into.mkdir(parents=True)
    (into / "token").write_text(token)
    (into / "ca.crt").write_bytes(ca)
    (into / "namespace").write_text(namespace)
    for path in into.iterdir():
        path.chmod(0o644)
    return into


def podman_args(deployment: dict[str, Any], image: str, ports: dict[str, int]) -> list[str]:
    """`podman run` for the chart's operator container, with the loopback substitution."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    user = (container.get("securityContext") or {}).get("runAsUser") or pod["securityContext"][
        "runAsUser"
    ]

    def local(text: str) -> str:
        for bound, port in ports.items():
            text = text.replace(f"0.0.0.0:{bound}", f"127.0.0.1:{port}")
        return text

    argv = ["--network", "host", "--user", str(user), "--name", f"ho-image-{free_port()}"]
    if container["securityContext"].get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    if "ALL" in container["securityContext"]["capabilities"]["drop"]:
        argv.append("--cap-drop=ALL")
    if container["securityContext"].get("allowPrivilegeEscalation") is False:
        argv.append("--security-opt=no-new-privileges")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        if "emptyDir" in volumes[mount["name"]]:
            argv += ["--tmpfs", mount["mountPath"]]
    for env in container.get("env") or []:
        argv += ["-e", f"{env['name']}={local(str(env['value']))}"]
    if "command" in container:
        argv += ["--entrypoint", json.dumps(container["command"])]
    return [*argv, image, *(local(a) for a in container.get("args") or [])]


@pytest.fixture
def running_operator(
    testbed: localcluster.State,
    operator_image: str,
    kubectl: Kubectl,
    core: client.CoreV1Api,
    namespace: str,
) -> Iterator[dict[str, int]]:
    name = f"ho-{namespace}"[:50]
    objects = helm_template(
        testbed,
        namespace,
        "crds.enabled=false",
        f"fullnameOverride={name}",
        "image.repository=" + operator_image.split(":")[0],
        "image.tag=" + operator_image.split(":")[1],
        f"watchNamespaces={{{namespace}}}",
        "logJson=false",
    )
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    rbac = [o for o in objects if o["kind"] != "Deployment"]
    kubectl("apply", "-n", namespace, "-f", "-", stdin="\n---\n".join(json.dumps(o) for o in rbac))
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    ports = {8080: free_port(), 9100: free_port()}
    server = yaml.safe_load(Path(testbed.kubeconfig).read_text())["clusters"][0]["cluster"][
        "server"
    ]
    host, port = re.match(r"https://([^:]+):(\d+)", server).groups()  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as tmp:
        mounted = service_account_files(
            core, namespace, account, testbed.kubeconfig, Path(tmp) / "sa"
        )
        argv = podman_args(deployment, operator_image, ports)
        name_index = argv.index("--name") + 1
        container = argv[name_index]
        run = [
            "run",
            "-d",
            "-e",
            f"KUBERNETES_SERVICE_HOST={host}",
            "-e",
            f"KUBERNETES_SERVICE_PORT={port}",
            "-v",
            f"{mounted}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
            *argv,
        ]
        images.podman(*run)
        try:
            yield ports
        finally:
            logs = images.podman("logs", container, check=False)
            print(logs.stdout[-4000:], logs.stderr[-4000:])
            images.podman("rm", "-f", "-t", "5", container, check=False)
            kubectl(
                "delete",
                "-f",
                "-",
                "--ignore-not-found",
                "--wait=false",
                stdin="\n---\n".join(
                    json.dumps(o) for o in rbac if o["kind"].startswith("Cluster")
                ),
                check=False,
            )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read().decode()
    except OSError as err:
        return 0, str(err)


def test_the_image_runs_as_the_chart_configures_it(
    running_operator: dict[str, int], harness: Harnesses
) -> None:
    healthz = f"http://127.0.0.1:{running_operator[8080]}/healthz"
    eventually(lambda: get(healthz)[0] == 200, timeout=90, what="the image's /healthz")
    harness.create("agent", {"image": "ghcr.io/acme/agent:1.0", "port": 8000})
    harness.wait_ready("agent", timeout=90)
    status, metrics = get(f"http://127.0.0.1:{running_operator[9100]}/metrics")
    assert status == 200
    assert "harness_operator_reconcile_duration_seconds_count" in metrics
    assert 'harness_canary_phase{name="agent"' in metrics

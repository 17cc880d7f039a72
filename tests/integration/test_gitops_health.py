"""What Argo CD and Flux show for a HarnessDeployment, on the real cluster with the real
operator: at every stage of its life the live object is judged by Flux's own library
(kstatus, built from sigs.k8s.io/cli-utils: cluster/kstatus.py) and by the Argo CD health
check the chart ships (charts/harness-operator/argocd/health.lua, run in Lua 5.1 as Argo CD
runs it: tests/argocd.py), and `kubectl wait` is run the way CI runs it (docs/gitops.md).

The releases here stay in flight on their own: one step of an hour, and an analysis (the
default checks of a HarnessDeployment with a model) that sees no traffic and so holds. The
tests move them on with the control annotations (promote, pause, abort), which is what keeps
the file well under a minute.
"""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest
import yaml
from kubernetes import client

import kstatus
from argocd import ARGOCD_DIR, health
from fakeapi import FakeModelAPI, ModelBehaviour
from scenarios import Harnesses, Kubectl
from testbed import OperatorProcess, eventually

MODEL = "claude-sonnet-4-6"
GOOD_KEY = "sk-test-good-7a1d3c"
REFUSED_KEY = "sk-test-revoked-4e9b0f"
RELEASED = '{.status.conditions[?(@.type=="Released")].status}'


def spec(api: FakeModelAPI, secret: str = "model-key", **extra: Any) -> dict[str, Any]:
    return {
        "image": "ghcr.io/acme/agent:1.0",
        "port": 8000,
        "replicas": 2,
        # Slow on purpose: a release stays in flight until a control annotation moves it.
        "rollout": {"steps": [{"weight": 50}], "interval": "1h", "progressDeadlineSeconds": 600},
        "model": {
            "provider": "anthropic",
            "name": MODEL,
            "baseURL": api.url,
            "credentials": {"secretRef": {"name": secret, "key": "api-key"}},
        },
        **extra,
    }


def put_secret(core: client.CoreV1Api, namespace: str, key: str) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="model-key"), string_data={"api-key": key}
    )
    try:
        core.create_namespaced_secret(namespace, body)
    except client.ApiException as err:
        if err.status != 409:
            raise
        core.replace_namespaced_secret("model-key", namespace, body)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in obj["status"]["conditions"] if c["type"] == type_)
    return found


def verdicts(
    harness: Harnesses, name: str
) -> tuple[dict[str, Any], tuple[str, str], tuple[str, str]]:
    """The live object, Flux's verdict on it and Argo CD's, all from one read."""
    obj = harness.get(name)
    return obj, kstatus.verdict(obj), health(obj)


def wait_status(harness: Harnesses, name: str, what: str, **wanted: Any) -> dict[str, Any]:
    """Poll until every `wanted` status field has its value (and the operator has observed
    the latest generation)."""

    def probe() -> dict[str, Any] | None:
        obj = harness.get(name)
        status = obj.get("status") or {}
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        return obj if all(status.get(k) == v for k, v in wanted.items()) else None

    return eventually(probe, timeout=60, interval=0.2, what=what)


def annotate(kubectl: Kubectl, namespace: str, name: str, annotation: str) -> None:
    kubectl("annotate", "--overwrite", f"hd/{name}", "-n", namespace, annotation)


def kubectl_wait(
    kubectl: Kubectl, namespace: str, name: str, what: str, timeout: int
) -> subprocess.CompletedProcess[str]:
    """`kubectl wait --for=<what> hd/<name>` exactly as CI runs it, with its exit code."""
    return subprocess.run(
        [
            kubectl.binary,
            "--kubeconfig",
            kubectl.kubeconfig,
            "wait",
            f"--for={what}",
            f"hd/{name}",
            "-n",
            namespace,
            f"--timeout={timeout}s",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout + 30,
    )


@pytest.mark.usefixtures("crds")
def test_argo_cd_and_flux_follow_a_release_from_first_deploy_to_a_refused_key(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    core: client.CoreV1Api,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    fake_api.accept_key(GOOD_KEY)
    fake_api.set_model(MODEL, ModelBehaviour())
    put_secret(core, namespace, GOOD_KEY)

    # First deploy, at rest: Current / Healthy.
    harness.create("agent", spec(fake_api))
    harness.wait_ready("agent", timeout=60)
    obj, flux, argo = verdicts(harness, "agent")
    stable = obj["status"]["stableRevision"]
    assert flux == ("Current", "Resource is Ready")
    assert argo == ("Healthy", f"revision {stable} serves all traffic")
    assert condition(obj, "Released")["reason"] == "Deployed"

    # A release in flight on a slow schedule: InProgress / Progressing, and
    # `kubectl wait --for=condition=Ready` does not return meanwhile.
    harness.patch_spec("agent", {"image": "ghcr.io/acme/agent:2.0"})
    wait_status(
        harness, "agent", "the release at its first step", phase="Progressing", stage="Analysing"
    )
    obj, flux, argo = verdicts(harness, "agent")
    message = obj["status"]["message"]
    assert "canary weight 50% (step 1/1)" in message, message
    assert flux == ("InProgress", message)
    assert argo == ("Progressing", message)
    waited = kubectl_wait(kubectl, namespace, "agent", "condition=Ready", timeout=3)
    assert waited.returncode != 0, waited.stdout
    assert "timed out" in waited.stderr, waited.stderr
    assert harness.get("agent")["status"]["phase"] == "Progressing", "the release ended"

    # Paused by hand: still InProgress for Flux, Suspended for Argo CD.
    annotate(kubectl, namespace, "agent", "harness.dev/pause=ci")
    wait_status(harness, "agent", "the release paused", phase="Paused")
    obj, flux, argo = verdicts(harness, "agent")
    assert flux == ("InProgress", obj["status"]["message"])
    assert argo == ("Suspended", obj["status"]["message"])
    annotate(kubectl, namespace, "agent", "harness.dev/resume=ci")
    wait_status(harness, "agent", "the release resumed", phase="Progressing")

    # Promoted: `kubectl wait --for=condition=Released` returns, Released=True Promoted,
    # Current / Healthy.
    annotate(kubectl, namespace, "agent", f"harness.dev/promote=full@{uuid.uuid4().hex[:8]}")
    waited = kubectl_wait(kubectl, namespace, "agent", "condition=Released", timeout=60)
    assert waited.returncode == 0, waited.stderr
    promoted = wait_status(harness, "agent", "phase Ready after promotion", phase="Ready")
    released = condition(promoted, "Released")
    assert (released["status"], released["reason"]) == ("True", "Promoted")
    obj, flux, argo = verdicts(harness, "agent")
    promoted_revision = obj["status"]["stableRevision"]
    assert promoted_revision != stable
    assert flux == ("Current", "Resource is Ready")
    assert argo == ("Healthy", f"revision {promoted_revision} serves all traffic")
    waited = kubectl_wait(kubectl, namespace, "agent", f"jsonpath={RELEASED}=True", timeout=10)
    assert waited.returncode == 0, waited.stderr

    # Aborted: rolled back, Released=False RolledBack, Failed / Degraded.
    harness.patch_spec("agent", {"image": "ghcr.io/acme/agent:3.0"})
    wait_status(harness, "agent", "a second release", phase="Progressing", stage="Analysing")
    annotate(kubectl, namespace, "agent", "harness.dev/abort=ci")
    waited = kubectl_wait(kubectl, namespace, "agent", f"jsonpath={RELEASED}=False", timeout=60)
    assert waited.returncode == 0, waited.stderr
    obj = wait_status(harness, "agent", "phase RolledBack", phase="RolledBack")
    released = condition(obj, "Released")
    assert (released["status"], released["reason"]) == ("False", "RolledBack")
    obj, flux, argo = verdicts(harness, "agent")
    stalled = condition(obj, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "RolledBack")
    assert flux == ("Failed", stalled["message"])
    assert argo == ("Degraded", stalled["message"])

    # A rotation to a key the provider refuses: a release (without a new generation), held
    # at preflight: Failed / Degraded.
    generation = obj["metadata"]["generation"]
    put_secret(core, namespace, REFUSED_KEY)
    harness.wait_for_condition("agent", "CredentialsValid", "False", timeout=30)
    obj = wait_status(harness, "agent", "the release held", phase="Progressing", stage="Preflight")
    obj, flux, argo = verdicts(harness, "agent")
    assert obj["metadata"]["generation"] == generation, "a Secret change bumped the generation"
    stalled = condition(obj, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidCredentials")
    assert stalled["message"].startswith("the model credential was refused")
    assert flux == ("Failed", stalled["message"])
    assert argo == ("Degraded", stalled["message"])


@pytest.mark.usefixtures("crds")
def test_argo_cd_and_flux_see_a_spec_that_cannot_be_realised_and_an_unobserved_one(
    harness: Harnesses,
    operator: OperatorProcess,
    fake_api: FakeModelAPI,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    # A first deploy whose pods cannot be scheduled: InProgress / Progressing.
    pending = {
        "image": "ghcr.io/acme/agent:1.0",
        "replicas": 2,
        "resources": {"requests": {"cpu": "64"}},  # more than any node has
    }
    harness.create("pending", pending)
    # A Secret that does not exist: Failed / Degraded, with the reason in the message.
    harness.create("orphan", spec(fake_api, secret="absent-key"))

    eventually(
        lambda: (
            "(0/2 replicas available)"
            in (harness.get("pending").get("status") or {}).get("message", "")
        ),
        what="the first rollout waiting for its pods",
    )
    obj, flux, argo = verdicts(harness, "pending")
    assert obj["status"]["phase"] == "Initializing"
    message = obj["status"]["message"]
    assert flux == ("InProgress", message)
    assert argo == ("Progressing", message)

    harness.wait_for_condition("orphan", "Stalled", "True", timeout=30)
    obj, flux, argo = verdicts(harness, "orphan")
    stalled = condition(obj, "Stalled")
    assert stalled["reason"] == "MissingReference"
    assert stalled["message"] == f"Secret/absent-key does not exist in {namespace}"
    assert flux == ("Failed", stalled["message"])
    assert argo == ("Degraded", stalled["message"])
    waited = kubectl_wait(kubectl, namespace, "orphan", f"jsonpath={RELEASED}=False", timeout=10)
    assert waited.returncode == 0, waited.stderr

    # With the operator gone, a spec change is never observed: InProgress / Progressing.
    operator.kill()
    harness.patch_spec("orphan", {"replicas": 3})
    obj, flux, argo = verdicts(harness, "orphan")
    generation = obj["metadata"]["generation"]
    assert obj["status"]["observedGeneration"] == generation - 1
    assert flux == (
        "InProgress",
        f"HarnessDeployment generation is {generation}, but latest observed generation is"
        f" {generation - 1}",
    )
    assert argo == ("Progressing", f"waiting for the operator to observe generation {generation}")


MESSAGE, STALLED = "<status.message>", "<Stalled message>"
FLUX = {
    # Before the first status write kstatus has nothing to go on (docs/gitops.md, gaps).
    "no_status": ("Current", "Resource is current"),
    "first_rollout": ("InProgress", MESSAGE),
    "healthy_first_deploy": ("Current", "Resource is Ready"),
    "release_in_progress": ("InProgress", MESSAGE),
    "paused": ("InProgress", MESSAGE),
    "healthy_promoted": ("Current", "Resource is Ready"),
    "rolled_back": ("Failed", STALLED),
    "held_refused_credential": ("Failed", STALLED),
    "spec_not_realisable": ("Failed", "Secret/absent-key does not exist in agents"),
    "generation_not_observed": (
        "InProgress",
        "HarnessDeployment generation is 2, but latest observed generation is 1",
    ),
}
"""What Flux reports for each Argo CD fixture, as the table in docs/gitops.md says."""


@pytest.mark.parametrize("fixture", sorted(FLUX))
def test_flux_reads_each_argo_cd_fixture_as_the_docs_say(fixture: str) -> None:
    obj = yaml.safe_load((ARGOCD_DIR / "testdata" / f"{fixture}.yaml").read_text())
    status, message = FLUX[fixture]
    if message == MESSAGE:
        message = obj["status"]["message"]
    elif message == STALLED:
        message = condition(obj, "Stalled")["message"]
    assert kstatus.verdict(obj) == (status, message)


def test_every_argo_cd_fixture_has_a_flux_verdict() -> None:
    assert {p.stem for p in (ARGOCD_DIR / "testdata").glob("*.yaml")} == set(FLUX)

"""Upgrading the operator over HarnessDeployments that an older version manages: revision
ids are computed differently now (from the rendered pod template), and the new operator
adopts them without a release for every HD whose pods do not change — idle ones, and one
whose last release was rolled back (which must not be released again).

The older operator is the real thing: operator 0.1 (commit be23226, the revision scheme
before this change), taken from this repository's history and run from its own source.
"""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

import localcluster
from harness_operator.api import HarnessDeploymentSpec
from harness_operator.render import legacy_revision
from scenarios import Harnesses
from testbed import OperatorProcess, canary_weight, eventually

pytestmark = pytest.mark.usefixtures("crds")

OPERATOR_0_1 = "be23226"
ROOT = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = {
    "image": "ghcr.io/acme/agent:1.0",
    "port": 8000,
    "replicas": 2,
    "rollout": {"steps": [{"weight": 50}], "interval": "30s"},
}


def operator_0_1(into: Path) -> Path:
    """The `operator/` tree of operator 0.1, extracted from git history."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", OPERATOR_0_1, "operator"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "operator"


SECRET_ENV = {"name": "PIN", "valueFrom": {"secretKeyRef": {"name": "pin", "key": "pin"}}}


def releases_started(harness: Harnesses, name: str) -> int:
    return sum(e.get("count", 1) for e in harness.events(name) if e["reason"] == "ReleaseStarted")


def apps_generation(apps: Any, namespace: str, name: str) -> tuple[int, int]:
    """Generations of both Deployments: they move on any change of their spec."""
    return tuple(  # type: ignore[return-value]
        apps.read_namespaced_deployment(f"{name}-{track}", namespace).metadata.generation
        for track in ("stable", "canary")
    )


def test_upgrading_adopts_revision_ids_without_releasing(
    testbed: localcluster.State,
    harness: Harnesses,
    apps: Any,
    custom: Any,
    core: Any,
    namespace: str,
    tmp_path: Path,
) -> None:
    old = OperatorProcess(
        testbed.kubeconfig,
        tmp_path / "operator-0.1.log",
        namespace=namespace,
        prometheus_url=testbed.prometheus_url,
        source=operator_0_1(tmp_path / "v0.1"),
    )
    try:
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": "pin"}, "stringData": {"pin": "4821"}}
        )
        harness.create("idle", SPEC)
        harness.create("rolled", SPEC)
        harness.create("secret", {**SPEC, "env": [SECRET_ENV]})
        for name in ("idle", "rolled", "secret"):
            harness.wait_ready(name)
        harness.patch_spec("rolled", {"image": "ghcr.io/acme/agent:1.1"})
        eventually(lambda: harness.get("rolled")["status"].get("phase") == "Progressing")
        custom.patch_namespaced_custom_object(
            "harness.dev",
            "v1alpha1",
            namespace,
            "harnessdeployments",
            "rolled",
            {"metadata": {"annotations": {"harness.dev/abort": "true"}}},
        )
        eventually(
            lambda: harness.get("rolled")["status"].get("phase") == "RolledBack",
            what="operator 0.1 to roll back",
        )
    finally:
        old.stop()

    before = {n: harness.get(n)["status"] for n in ("idle", "rolled", "secret")}
    started_by_0_1 = {n: releases_started(harness, n) for n in before}
    generations = {n: apps_generation(apps, namespace, n) for n in before}
    for name, status in before.items():
        spec = HarnessDeploymentSpec.model_validate(harness.get(name)["spec"])
        hashes = status.get("stableConfigHashes") or {}
        assert status["canaryRevision"] == legacy_revision(spec, hashes), "0.1's ids"

    new = OperatorProcess(
        testbed.kubeconfig,
        tmp_path / "operator.log",
        namespace=namespace,
        prometheus_url=testbed.prometheus_url,
    )
    try:
        adopted = {
            name: eventually(
                lambda n=name: (s := harness.get(n)["status"]).get("revisionAliases") and s,
                what=f"{name}'s ids adopted",
            )
            for name in before
        }
        for name, status in adopted.items():
            # The ids in use stay, as aliases of the new ones: no pod is relabelled.
            assert status["stableRevision"] == before[name]["stableRevision"]
            assert before[name]["stableRevision"] in status["revisionAliases"].values()
        assert adopted["idle"]["phase"] == "Ready"
        assert adopted["rolled"]["phase"] == "RolledBack"
        rolled = adopted["rolled"]
        assert rolled["rollback"]["revision"] == before["rolled"]["rollback"]["revision"]
        assert rolled["rollback"]["revision"] in rolled["revisionAliases"].values()
        harness.wait_for_event("idle", "RevisionAdopted")
        # Several resyncs later nothing was released.
        count = new.metric("harness_operator_reconcile_duration_seconds_count")
        eventually(
            lambda: new.metric("harness_operator_reconcile_duration_seconds_count") > count + 6,
            timeout=30,
            what="a few resyncs",
        )
        for name in before:
            after = harness.get(name)["status"]
            assert apps_generation(apps, namespace, name) == generations[name], "pods untouched"
            assert after["phase"] == before[name]["phase"], name
            assert after.get("releaseCount") == before[name].get("releaseCount"), name
            assert canary_weight(custom, namespace, name) == 0
            # (Counted, not ordered: Events list by name, and their times are in seconds.)
            assert releases_started(harness, name) == started_by_0_1[name], name
        # 0.1 hashed Secrets without a key; the hash of an unchanged Secret is kept (so
        # nothing is released) until its content changes.
        secret = harness.get("secret")["status"]
        assert secret["stableConfigHashes"] == before["secret"]["stableConfigHashes"]
    finally:
        new.stop()

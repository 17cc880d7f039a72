"""Another writer changes a field the operator owns on each kind it generates: the change is
undone within seconds (by the watch on the object, not the resync), and once undone the
operator writes nothing more — it does not fight a writer that has stopped (issue 11, fault
tests: conflicting writers on every generated kind)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import localcluster
from scenarios import Harnesses, Kubectl
from testbed import audit_writes, eventually, stays

ROOT = Path(__file__).resolve().parents[2]
RESTORED_WITHIN = 10.0
RESYNC = 60.0  # longer than RESTORED_WITHIN: only the kick can restore in time

# kind (kubectl), object, a merge patch by another writer, what the operator owns there
Read = Callable[[dict[str, Any]], Any]
CASES: list[tuple[str, str, dict[str, Any], Read]] = [
    (
        "deployment",
        "agent-stable",
        {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 5}}}},
        lambda o: o["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
    ),
    (
        "service",
        "agent",
        {"spec": {"selector": {"harness.dev/track": "canary"}}},
        lambda o: o["spec"]["selector"],
    ),
    (
        "poddisruptionbudget",
        "agent-stable",
        {"spec": {"maxUnavailable": 3}},
        lambda o: o["spec"].get("maxUnavailable"),
    ),
    (
        "horizontalpodautoscaler",
        "agent-stable",
        {"spec": {"maxReplicas": 99}},
        lambda o: o["spec"]["maxReplicas"],
    ),
    (
        "destinationrule",
        "agent-canary",
        {"spec": {"host": "elsewhere.example.com"}},
        lambda o: o["spec"]["host"],
    ),
    (
        "virtualservice",
        "agent",
        {"spec": {"hosts": ["elsewhere.example.com"]}},
        lambda o: o["spec"]["hosts"],
    ),
]


@pytest.fixture
def resync_seconds() -> float:
    return RESYNC


def spec() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    result: dict[str, Any] = doc["spec"]
    return result


@pytest.mark.usefixtures("operator")
def test_another_writers_change_is_undone_and_not_fought_over(
    harness: Harnesses, kubectl: Kubectl, testbed: localcluster.State, namespace: str
) -> None:
    harness.create("agent", spec())
    harness.wait_ready("agent")

    for kind, name, patch, read in CASES:

        def live(kind: str = kind, name: str = name, read: Read = read) -> Any:
            return read(json.loads(kubectl("get", kind, name, "-n", namespace, "-o", "json")))

        owned = live()
        kubectl("patch", kind, name, "-n", namespace, "--type", "merge", "-p", json.dumps(patch))
        assert live() != owned, f"the other writer's change to {kind} did not land"

        eventually(
            lambda live=live, owned=owned: live() == owned,
            timeout=RESTORED_WITHIN,
            what=f"{kind} {name} restored",
        )
        settled = time.time()  # the restoring write is in: any write from now on is a fight

        def writes(settled: float = settled) -> list[Any]:
            return [
                w["objectRef"]
                for w in audit_writes(testbed.audit_log, namespace, settled)
                if w["objectRef"].get("resource") not in ("harnessdeployments", "events")
            ]

        # Three seconds, several watch echoes of the restore: a fight would show as writes.
        assert stays(writes, until=time.time() + 3, what=f"writes after {kind}") == []
        assert live() == owned

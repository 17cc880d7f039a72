"""A spec the CRD accepts but the apiserver refuses for a generated object is reported, not
retried in silence (issue 11, defect 1).

The operator has the apiserver judge the whole object set (server-side dry run) before the
first write of a spec: a refusal becomes `Degraded=True` (reason `ApplyRefused`) with the
apiserver's message naming the field, a Warning Event, nothing half-created; on a running
HarnessDeployment, what runs is left as it was. Fixing the spec recovers.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from scenarios import Harnesses
from testbed import OperatorProcess, audit_writes, eventually

pytestmark = pytest.mark.usefixtures("operator")

IMAGE = "ghcr.io/acme/agent:1.0"

# (case, spec fields on top of the image, a fragment of the apiserver's message)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    (
        "requests-above-limits",
        {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
        "must be less than or equal to cpu limit",
    ),
    (
        "toleration-operator",
        {"podTemplate": {"tolerations": [{"key": "gpu", "operator": "Equals", "value": "a"}]}},
        "tolerations[0].operator",
    ),
    (
        "node-selector-value",
        {"podTemplate": {"nodeSelector": {"disk": "ssd fast"}}},
        "nodeSelector",
    ),
    (
        "subpath-dot-dot",
        {
            "podTemplate": {
                "volumes": [{"name": "data", "emptyDir": {}}],
                "volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": "../etc"}],
            }
        },
        "subPath",
    ),
    (
        "unknown-free-form-key",
        {"podTemplate": {"affinity": {"nodeAffinityy": {}}}},
        "field not declared in schema",
    ),
    (
        "field-ref",
        {"env": [{"name": "WHERE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nowhere"}}}]},
        "fieldRef.fieldPath",
    ),
]


def generated(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str, name: str) -> list[str]:
    found = [d.metadata.name for d in apps.list_namespaced_deployment(ns).items]
    found += [s.metadata.name for s in core.list_namespaced_service(ns).items]
    return [n for n in found if n == name or n.startswith(f"{name}-")]


@pytest.mark.parametrize(("case", "fields", "fragment"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_refused_new_harness_is_degraded_and_nothing_is_created(
    harness: Harnesses,
    apps: client.AppsV1Api,
    core: client.CoreV1Api,
    namespace: str,
    case: str,
    fields: dict[str, Any],
    fragment: str,
) -> None:
    error = harness.try_create(case, {"image": IMAGE, **fields})
    assert error is None, f"the CRD refuses it already (better): {error}"

    degraded = harness.wait_for_condition(case, "Degraded", timeout=30)

    assert degraded["reason"] == "ApplyRefused"
    assert fragment in degraded["message"], degraded["message"]
    event = harness.wait_for_event(case, "ApplyRefused", timeout=10)
    assert event["type"] == "Warning"
    assert fragment in event["message"]
    assert generated(apps, core, namespace, case) == []


def test_a_refused_edit_leaves_what_runs_alone_and_a_fix_recovers(
    harness: Harnesses,
    apps: client.AppsV1Api,
    operator: OperatorProcess,
    testbed: Any,
    namespace: str,
) -> None:
    harness.create("agent", {"image": IMAGE, "replicas": 2})
    harness.wait_ready("agent")
    generation = apps.read_namespaced_deployment("agent-stable", namespace).metadata.generation
    since = time.time()

    harness.patch_spec("agent", {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}})
    degraded = harness.wait_for_condition("agent", "Degraded", timeout=30)

    assert degraded["reason"] == "ApplyRefused"
    assert "must be less than or equal to cpu limit" in degraded["message"]
    # Several resyncs later: still one refused dry run per pass, no write, pods untouched.
    count = operator.metric("harness_operator_reconcile_duration_seconds_count")
    eventually(
        lambda: operator.metric("harness_operator_reconcile_duration_seconds_count") > count + 3,
        timeout=30,
        what="a few resyncs",
    )
    stable = apps.read_namespaced_deployment("agent-stable", namespace)
    assert stable.metadata.generation == generation
    writes = [
        w
        for w in audit_writes(testbed.audit_log, namespace, since)
        if w["objectRef"].get("resource") != "harnessdeployments"
        and w["objectRef"].get("resource") != "events"
        and not (w.get("requestURI") or "").count("dryRun=All")
    ]
    assert writes == [], [w["requestURI"] for w in writes]
    assert harness.get("agent")["status"]["phase"] == "Ready"

    harness.patch_spec(
        "agent", {"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}}
    )
    harness.wait_for_condition("agent", "Degraded", status="False", timeout=30)
    harness.wait_for_event("agent", "Recovered", timeout=10)

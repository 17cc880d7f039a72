"""Strings and quantities the apiserver treats specially reach the generated objects intact,
and a converged HarnessDeployment is left alone.

- Characters beyond the BMP (emoji), bidirectional controls (U+202E) with Arabic and Hebrew,
  zero-width characters and YAML line breaks in env values, annotations, command, args and
  the image: server-side apply must carry them byte for byte (the apply body is read as
  YAML; see `kube.client.apply_body`).
- Quantities the apiserver re-canonicalises (`1000m` -> `1`, a 40-digit `Ki` value capped to
  2^63-1, `0.5` -> `500m`, `1e3` kept as is): once converged, a resync sends no write and
  posts no `Updated` Event (see `kube.diff.stored_quantity`).

Writes are counted from the apiserver's audit log, independent of the operator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

import localcluster
from harness_operator.kube import Kube
from harness_operator.kube.diff import stored_quantity
from scenarios import Harnesses
from testbed import OperatorProcess, audit_writes, eventually
from unit.test_kube_encoding import HOSTILE

EMOJI = "launch \U0001f680 done \u2705 family \U0001f468\u200d\U0001f469\u200d\U0001f467"
RTL = "\u202eevil.exe \u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd\u200f\u200e"
ZERO_WIDTH = "zero\u200bwidth\u200c\u200d\u2060\ufeffend"
BREAKS = "next\u0085line\u2028para\u2029end"
VALUES = {"EMOJI": EMOJI, "RTL": RTL, "ZERO_WIDTH": ZERO_WIDTH, "BREAKS": BREAKS}
IMAGE = "ghcr.io/acme/agent:1.0-\U0001f680"

PASSES = "harness_operator_reconcile_duration_seconds_count"


def hostile_spec() -> dict[str, Any]:
    return {
        "image": IMAGE,
        "port": 8000,
        "replicas": 1,
        "command": ["/bin/agent", EMOJI],
        "args": ["--greeting", RTL, "--separator", ZERO_WIDTH, "--breaks", BREAKS],
        "env": [{"name": name, "value": value} for name, value in VALUES.items()],
        "podTemplate": {
            "annotations": {
                f"example.com/{name.lower().replace('_', '-')}": value
                for name, value in VALUES.items()
            }
        },
    }


SIZES: dict[str, dict[str, str | int]] = {
    # schedulable on the test bed's nodes (which have no ephemeral storage to offer): the
    # HarnessDeployment becomes Ready
    "requests": {"cpu": "0.5", "memory": "1.5Gi"},
    "limits": {"cpu": "1000m", "memory": 2147483648},
}
HUGE: dict[str, dict[str, str | int]] = {
    # never scheduled (replicas: 0), but stored, canonicalised and compared all the same
    "requests": {
        "memory": "1234567890123456789012345678901234567890Ki",
        "cpu": "1e3",
        "ephemeral-storage": "123456789012345678901234567890",
    },
    "limits": {
        "memory": "100000000000000000000000000000Ki",
        "cpu": "1E3",
        "ephemeral-storage": "123456789012345678901234567890.0000000001",
    },
}


def deployment(apps: client.AppsV1Api, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = apps.api_client.sanitize_for_serialization(
        apps.read_namespaced_deployment(name, namespace)
    )
    return obj


def quiet(
    operator: OperatorProcess,
    testbed: localcluster.State,
    namespace: str,
    passes: int,
) -> Callable[[], list[dict[str, Any]]]:
    """A probe: the writes the operator sent while it ran `passes` more reconcile passes."""

    def writes() -> list[dict[str, Any]]:
        since = time.time()
        start = operator.metric(PASSES)
        eventually(
            lambda: operator.metric(PASSES) >= start + passes,
            timeout=30,
            interval=0.2,
            what=f"{passes} reconcile passes",
        )
        return audit_writes(testbed.audit_log, namespace, since)

    return writes


def converge_then_stay_quiet(
    operator: OperatorProcess, testbed: localcluster.State, namespace: str, harnesses: int
) -> None:
    """Wait (bounded) for a write-free window of two passes per HarnessDeployment, then
    require the next window of three passes each to be write-free as well. A spec that is
    re-applied on every pass never gets there."""
    window = quiet(operator, testbed, namespace, 2 * harnesses)
    last: list[dict[str, Any]] = []

    def settled() -> bool:
        nonlocal last
        last = window()
        return not last

    try:
        eventually(settled, timeout=60, interval=0, what="a write-free window")
    except AssertionError:
        raise AssertionError(
            "writes on every pass: "
            + repr(
                [
                    (w["verb"], w["objectRef"].get("resource"), w["objectRef"].get("name"))
                    for w in last
                ]
            )
        ) from None
    patches = operator.metric("harness_operator_kube_requests_total", {"verb": "patch"})
    writes = quiet(operator, testbed, namespace, 3 * harnesses)()
    assert writes == [], [(w["verb"], w["objectRef"], w["userAgent"]) for w in writes]
    assert operator.metric("harness_operator_kube_requests_total", {"verb": "patch"}) == patches


@pytest.mark.parametrize("kind", HOSTILE)
def test_server_side_apply_carries_every_character(namespace: str, kind: str) -> None:
    kube = Kube()
    value = HOSTILE[kind]
    name = f"chars-{kind}"
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "annotations": {"v": value}},
        "data": {"v": value},
    }
    returned = kube.apply(obj)
    live = kube.get("v1", "ConfigMap", namespace, name)
    assert live is not None
    for got in (returned, live):
        assert got["data"]["v"].encode() == value.encode()
        assert got["metadata"]["annotations"]["v"].encode() == value.encode()


def test_hostile_strings_reach_the_deployment_byte_for_byte(
    harness: Harnesses,
    namespace: str,
    apps: client.AppsV1Api,
    testbed: localcluster.State,
    operator: OperatorProcess,
) -> None:
    harness.create("hostile", hostile_spec())
    harness.wait_ready("hostile")

    for name in ("hostile-stable", "hostile-canary"):
        template = deployment(apps, namespace, name)["spec"]["template"]
        [container] = template["spec"]["containers"]
        assert container["image"].encode() == IMAGE.encode()
        assert [c.encode() for c in container["command"]] == [b"/bin/agent", EMOJI.encode()]
        assert container["args"] == hostile_spec()["args"]
        assert [a.encode() for a in container["args"]][1::2] == [
            v.encode() for v in (RTL, ZERO_WIDTH, BREAKS)
        ]
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        for key, value in VALUES.items():
            assert env[key].encode() == value.encode(), key
        annotations = template["metadata"]["annotations"]
        for key, value in hostile_spec()["podTemplate"]["annotations"].items():
            assert annotations[key].encode() == value.encode(), key

    status = harness.get("hostile")["status"]
    assert status["phase"] == "Ready"
    converge_then_stay_quiet(operator, testbed, namespace, harnesses=1)


def test_canonicalised_quantities_converge_without_writes(
    harness: Harnesses,
    namespace: str,
    apps: client.AppsV1Api,
    testbed: localcluster.State,
    operator: OperatorProcess,
) -> None:
    base = {"image": "ghcr.io/acme/agent:1.0", "port": 8000}
    harness.create("sizes", {**base, "replicas": 1, "resources": SIZES})
    harness.create("huge", {**base, "replicas": 0, "resources": HUGE})
    harness.wait_ready("sizes")
    eventually(
        lambda: harness.get("huge").get("status", {}).get("stableRevision"),
        timeout=60,
        what="huge to be reconciled",
    )

    # The live objects carry the apiserver's canonical forms, not what the spec says...
    for hd, resources in (("sizes", SIZES), ("huge", HUGE)):
        [container] = deployment(apps, namespace, f"{hd}-stable")["spec"]["template"]["spec"][
            "containers"
        ]
        for kind, wanted in resources.items():
            live = container["resources"][kind]
            for resource, quantity in wanted.items():
                assert live[resource] == stored_quantity(quantity, resource_list=True)
    assert container["resources"]["requests"]["memory"] == "9223372036854775807"
    assert container["resources"]["requests"]["cpu"] == "1e3"

    # ...and the operator takes them for what it applied: nothing is written again.
    converge_then_stay_quiet(operator, testbed, namespace, harnesses=2)
    for hd in ("sizes", "huge"):
        updates = [e["message"] for e in harness.events(hd) if e["reason"] == "Updated"]
        assert not [m for m in updates if "resources" in m], updates


def nested_json(depth: int) -> str:
    """`{"a": {"a": ... {}}}`, `depth` levels, as JSON text (Python's own encoder and the
    kubernetes client's serializer stop near 1,000 levels)."""
    return '{"a":' * depth + "{}" + "}" * depth


@pytest.mark.usefixtures("operator")
def test_a_spec_nested_too_deep_is_reported_not_left_unprocessed(harness: Harnesses) -> None:
    """The apiserver stores up to 10,000 levels in a free-form field. The operator reads
    such an object (it used to fail in kopf's deep copy at a few hundred, so the object was
    never processed), says why it will not render it, in status and an Event, and goes on
    reconciling its neighbours."""
    harness.create("neighbour", {"image": "ghcr.io/acme/agent:1.0"})
    manifest = json.dumps(harness.manifest("deep", {"image": "ghcr.io/acme/agent:1.0"}))
    deep = nested_json(9_990)
    manifest = manifest.replace('"image"', f'"podTemplate": {{"affinity": {deep}}}, "image"', 1)
    harness.kubectl("create", "-f", "-", stdin=manifest)

    def degraded() -> dict[str, Any] | None:
        # Read with kubectl: the Python client's decoder stops near 1,000 levels.
        out = harness.kubectl(
            "get", "hd", "deep", "-n", harness.namespace, "-o", "jsonpath={.status.conditions}"
        )
        conditions = json.loads(out) if out.strip() else []
        return next((c for c in conditions if c["type"] == "Degraded"), None)

    condition = eventually(lambda: (c := degraded()) and c["status"] == "True" and c, timeout=30)

    assert condition["reason"] == "InvalidSpec"
    assert "nested more than 64 levels deep" in condition["message"]
    assert "spec.podTemplate.affinity.a.a" in condition["message"]
    event = harness.wait_for_event("deep", "InvalidSpec", timeout=10)
    assert "nested more than 64 levels deep" in event["message"]
    harness.wait_ready("neighbour")

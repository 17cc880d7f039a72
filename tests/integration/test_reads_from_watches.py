"""Reads from the watches: once a HarnessDeployment has converged, its resync passes send
no GET for the objects it generates (they come from the watches), counted in the API
server's audit log (issue 10, item 1)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

import localcluster
from scenarios import Harnesses
from testbed import OperatorProcess, audit_requests, eventually

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("crds")
def test_converged_passes_read_generated_objects_from_the_watches(
    harness: Harnesses, operator: OperatorProcess, testbed: localcluster.State, namespace: str
) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())["spec"]
    harness.create("agent", spec)
    harness.wait_ready("agent")
    start = operator.reconcile_passes()
    eventually(lambda: operator.reconcile_passes() >= start + 2, timeout=30, what="passes")

    since = time.time()
    counted_from = operator.reconcile_passes()
    eventually(
        lambda: operator.reconcile_passes() >= counted_from + 5, timeout=30, what="5 resyncs"
    )
    passes = operator.reconcile_passes() - counted_from
    reads = audit_requests(testbed.audit_log, namespace, since, frozenset({"get"}))

    print(f"READS_PER_PASS: {len(reads) / passes:.2f} ({len(reads)} GETs in {passes} passes)")
    assert [r["objectRef"] for r in reads] == []

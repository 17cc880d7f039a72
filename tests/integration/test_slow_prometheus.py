"""One tenant's hung Prometheus does not delay anyone else's rollback.

Eight HarnessDeployments release against a Prometheus that accepts connections and never
answers (their queries time out after 60 s). Meanwhile a ninth, analysed by the test bed's
Prometheus, gets a canary that breaks: it is rolled back as fast as it would be alone.
Before queries moved off the reconcile pass, the eight held every pass thread and this
rollback took two minutes (issue 11, defect 6).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from scenarios import Harnesses, Releases, release_spec
from testbed import eventually

Given = Callable[[str], Releases]
V1, V2 = "ghcr.io/acme/agent:1.0", "ghcr.io/acme/agent:1.1"
TENANTS = 8


class HungPrometheus:
    """Accepts every connection, reads what is sent, never answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._held.append(conn)
            self.accepted += 1

    def __enter__(self) -> HungPrometheus:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def hung() -> Iterator[HungPrometheus]:
    with HungPrometheus() as server:
        yield server


def tenant_spec(address: str) -> dict[str, Any]:
    spec = release_spec(V1, steps=(50,), interval="30s")
    spec["analysis"]["prometheus"] = {"address": address, "timeoutSeconds": 60}
    return spec


def test_a_hung_prometheus_does_not_delay_another_tenants_rollback(
    releases: Given, harness: Harnesses, hung: HungPrometheus
) -> None:
    for i in range(TENANTS):
        harness.create(f"tenant-{i}", tenant_spec(hung.url))
    for i in range(TENANTS):
        harness.wait_ready(f"tenant-{i}")
    agent = releases("agent").deployed(release_spec(V1, steps=(20, 40, 60), interval="30s"))
    for i in range(TENANTS):
        harness.patch_spec(f"tenant-{i}", {"image": V2})
    eventually(lambda: hung.accepted >= 4, timeout=60, what="the tenants' queries to hang")

    agent.canary_behaves(error_rate=0.4)
    started = time.monotonic()
    agent.new_image(V2)
    status = agent.wait_for_phase("RolledBack", timeout=90)
    took = time.monotonic() - started

    print(f"ROLLBACK WITH {TENANTS} HUNG TENANTS: {took:.1f} s")
    assert status["rollback"]["check"] == "error-rate"
    # Alone, this rollback takes 6-10 s here (two failed 1 s rounds once the canary has
    # traffic); the eight hung tenants used to push it past two minutes.
    assert took < 30, f"rolled back after {took:.0f}s"
    # The tenants' rounds are still hanging: the isolation, not a quick timeout, did it.
    tenant = harness.get("tenant-0")["status"]
    assert tenant.get("phase") == "Progressing", tenant

"""Leader election wiring: with `HARNESS_LEADER_ELECTION=true`, replicas compete for a Lease
(`kube/lease.py`) and only the holder reconciles; the others watch and keep the latest
bodies, so the one that takes over starts every loop at once. Off by default: one replica
needs no Lease."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

import kopf
from prometheus_client import Gauge

from harness_operator.config import leader_election
from harness_operator.handlers import harness
from harness_operator.handlers.kicks import LEADERSHIP
from harness_operator.kube.lease import RETRY_SECONDS, Elector

log = logging.getLogger(__name__)
LEADER = Gauge(
    "harness_operator_leader",
    "1 while this replica acts (holds the leader Lease, or runs without leader election).",
)
ELECTOR: Elector | None = None
CAMPAIGN: asyncio.Task[None] | None = None


@kopf.on.startup(id="harness-leader-election")
async def start_election(**_: Any) -> None:
    global ELECTOR, CAMPAIGN
    settings = leader_election()
    if settings is None:
        _act(True)
        return
    namespace, name = settings
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    # The reconciler's client: one connection pool per process.
    ELECTOR = Elector(harness.reconciler().kube, namespace, name, identity)
    _act(False)
    log.info("leader election on Lease %s/%s as %s", namespace, name, identity)
    CAMPAIGN = asyncio.create_task(_campaign(ELECTOR), name="leader-election")


async def _campaign(elector: Elector) -> None:
    while True:
        leading = await asyncio.to_thread(elector.tick)
        if leading != LEADERSHIP.acting:
            _act(leading)
            if leading:
                harness.start_all_loops()
            else:
                harness.stop_all_loops()
        await asyncio.sleep(RETRY_SECONDS)


def _act(acting: bool) -> None:
    LEADERSHIP.acting = acting
    LEADER.set(1 if acting else 0)


@kopf.on.cleanup(id="harness-leader-release")
async def release(**_: Any) -> None:
    """On a clean stop, hand the Lease over instead of letting it expire."""
    if ELECTOR is not None:
        harness.stop_all_loops()
        await asyncio.to_thread(ELECTOR.release)

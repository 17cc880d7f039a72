"""kopf wiring for HarnessDeployments: one daemon per object runs the reconcile loop.

The loop reconciles when something relevant happens (the HD changed, or one of its
generated objects was changed or deleted by someone else: a *kick*) and at least every
`resync` seconds otherwise (ConfigMaps and Secrets are not watched; the resync catches a
missing one appearing). One loop per object means passes never overlap.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import kopf

from harness_operator import GROUP
from harness_operator.api import API_VERSION, KIND, PLURAL, VERSION
from harness_operator.config import OperatorConfig
from harness_operator.controller import Reconciler
from harness_operator.handlers.kicks import KICKS
from harness_operator.kube import Kube
from harness_operator.naming import LABEL_APP_MANAGED_BY, LABEL_NAME, MANAGED_BY

log = logging.getLogger(__name__)
MANAGED = {LABEL_APP_MANAGED_BY: MANAGED_BY}
_reconciler: Reconciler | None = None


def reconciler() -> Reconciler:
    global _reconciler  # one client per process, created on first use
    if _reconciler is None:
        _reconciler = Reconciler(Kube())
    return _reconciler


@kopf.daemon(GROUP, VERSION, PLURAL, id="reconcile", cancellation_timeout=10.0)
async def reconcile_loop(
    body: kopf.Body, name: str, namespace: str | None, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    assert namespace is not None  # HarnessDeployment is namespaced
    config = OperatorConfig.from_env()
    kick = KICKS.register(namespace, name)
    failures = 0
    try:
        while not stopped:
            kick.clear()
            snapshot = copy.deepcopy(dict(body))
            try:
                outcome = await asyncio.to_thread(reconciler().reconcile, snapshot)
                if outcome.status is not None:
                    await asyncio.to_thread(
                        reconciler().kube.patch_status,
                        API_VERSION,
                        KIND,
                        namespace,
                        name,
                        outcome.status,
                    )
                for note in outcome.notes:
                    kopf.event(body, type=note.type, reason=note.reason, message=note.message)
                if outcome.writes:
                    log.info("%s/%s: %s", namespace, name, ", ".join(outcome.writes))
                failures = 0
                wait = config.resync_seconds
            except Exception as err:  # the loop must outlive API hiccups; retry with backoff
                failures += 1
                wait = min(config.resync_seconds, 2.0**failures)
                log.warning(
                    "%s/%s: reconcile failed (%s); retrying in %.0fs", namespace, name, err, wait
                )
            try:
                await asyncio.wait_for(kick.wait(), timeout=wait)
                await asyncio.sleep(config.debounce_seconds)  # fold bursts of events
            except TimeoutError:
                pass
    finally:
        KICKS.unregister(namespace, name, kick)


@kopf.on.event(GROUP, VERSION, PLURAL, id="kick-on-change")
def on_harness_event(name: str, namespace: str | None, **_: Any) -> None:
    KICKS.kick(namespace or "", name)


def _kick_owner(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
    owner = labels.get(LABEL_NAME)
    if owner and namespace:
        KICKS.kick(namespace, owner)


# Changes to generated objects (ours or anyone's) wake the owner's loop: drift is undone at
# once, and status follows the Deployments' progress without polling.
for _group, _version, _plural in (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.istio.io", "v1", "virtualservices"),
    ("networking.istio.io", "v1", "destinationrules"),
):
    kopf.on.event(_group, _version, _plural, labels=MANAGED, id=f"kick-owner-{_plural}")(
        _kick_owner
    )

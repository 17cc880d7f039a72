"""kopf wiring for HarnessDeployments: one reconcile loop (an asyncio task) per object.

Watch events of an HD start its loop, hand it the latest body and wake it; a DELETED event
(or a deletion timestamp) ends it. The loop reconciles when something relevant happens (the
HD changed, or one of its generated objects was changed or deleted by someone else: a
*kick*), at the release's check interval while a release runs, and at least every `resync`
seconds otherwise. One loop per object means passes never overlap.

We deliberately use no kopf daemon: kopf guards daemons with a finalizer, and a finalizer
makes every HarnessDeployment (and its namespace) undeletable while the operator is down
or uninstalled. Our children are garbage-collected through owner references, so nothing
needs the operator at deletion time.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from collections.abc import Hashable
from typing import Any, cast

import kopf

from harness_operator import GROUP, metrics
from harness_operator.analysis.service import QueryService
from harness_operator.api import API_VERSION, KIND, PLURAL, VERSION
from harness_operator.config import OperatorConfig
from harness_operator.controller import Outcome, Reconciler
from harness_operator.controller.pool import PassPool
from harness_operator.handlers.kicks import HEARTBEAT, KICKS, LEADERSHIP
from harness_operator.kube import Obj
from harness_operator.kube.cache import CachedKube, ObjectCache, resource_version
from harness_operator.kube.client import LAST_ANSWER
from harness_operator.naming import LABEL_APP_MANAGED_BY, LABEL_NAME, MANAGED_BY
from harness_operator.preflight import PreflightService

log = logging.getLogger(__name__)
MANAGED = {LABEL_APP_MANAGED_BY: MANAGED_BY}
BODIES: dict[tuple[str, str], Obj] = {}
"""The latest body of every HD with a running loop, from its watch events."""
LOOPS: dict[tuple[str, str], asyncio.Task[None]] = {}

# Kinds we generate, all watched (a change wakes the owner; the bodies feed the cache):
# (group, version, plural, kind).
WATCHED = (
    ("apps", "v1", "deployments", "Deployment"),
    ("", "v1", "services", "Service"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    ("networking.istio.io", "v1", "virtualservices", "VirtualService"),
    ("networking.istio.io", "v1", "destinationrules", "DestinationRule"),
    ("batch", "v1", "cronjobs", "CronJob"),
    ("batch", "v1", "jobs", "Job"),  # a cron run that finishes is judged at once
)
CACHE = ObjectCache({(f"{g}/{v}" if g else v, kind) for g, v, _, kind in WATCHED})


@functools.cache
def operator_config() -> OperatorConfig:
    """The process's settings, read from the environment once."""
    return OperatorConfig.from_env()


@functools.cache
def passes() -> PassPool:
    """The threads reconcile passes and their status writes run on."""
    return PassPool(operator_config().pass_workers)


@functools.cache
def reconciler() -> Reconciler:
    """One client per process, created on first use (in the event loop's thread, so the
    preflight's completion can find the loop to wake the HarnessDeployment that waits)."""
    config = operator_config()
    loop = asyncio.get_running_loop()

    def wake(waiter: Hashable) -> None:
        namespace, name = cast(tuple[str, str], waiter)
        loop.call_soon_threadsafe(KICKS.kick, namespace, name)

    preflight = PreflightService(
        ttl_seconds=config.preflight_ttl_seconds,
        max_concurrent=int(config.preflight_concurrency),
        timeout_seconds=config.preflight_timeout_seconds,
        on_done=wake,
    )
    queries = QueryService(
        max_workers=config.query_workers, per_endpoint=config.query_per_prometheus, on_done=wake
    )
    return Reconciler(
        CachedKube(CACHE),
        prometheus_url=config.prometheus_url,
        preflight=preflight,
        queries=queries,
    )


@kopf.on.event(GROUP, VERSION, PLURAL, id="harness-loop")
async def on_harness_event(
    type: str | None, body: kopf.Body, name: str, namespace: str | None, **_: Any
) -> None:
    """Start, feed and stop the object's loop from its watch events."""
    HEARTBEAT.beat()
    if namespace is None:
        return
    key = (namespace, name)
    if type == "DELETED" or body.get("metadata", {}).get("deletionTimestamp"):
        task = LOOPS.pop(key, None)
        BODIES.pop(key, None)
        if task is not None:
            task.cancel()
        metrics.forget(namespace, name)
        reconciler().queries.forget(key)
        return
    BODIES[key] = copy.deepcopy(dict(body))
    if not LEADERSHIP.acting:
        return  # a standby replica keeps the bodies, so it can take over at once
    task = LOOPS.get(key)
    if task is None or task.done():
        start_loop(namespace, name)
    else:
        KICKS.kick(namespace, name)


def start_loop(namespace: str, name: str) -> None:
    LOOPS[(namespace, name)] = asyncio.create_task(
        reconcile_loop(namespace, name), name=f"hd:{namespace}/{name}"
    )


def start_all_loops() -> None:
    """This replica now leads: reconcile every known HarnessDeployment."""
    for namespace, name in list(BODIES):
        task = LOOPS.get((namespace, name))
        if task is None or task.done():
            start_loop(namespace, name)


def stop_all_loops() -> None:
    """This replica no longer leads: stop acting at once (a pass under way still ends)."""
    for task in LOOPS.values():
        task.cancel()
    LOOPS.clear()


async def reconcile_loop(namespace: str, name: str) -> None:
    config = operator_config()
    kick = KICKS.register(namespace, name)
    failures = 0
    try:
        while (namespace, name) in BODIES and LEADERSHIP.acting:
            kick.clear()
            body = BODIES[(namespace, name)]
            try:
                with metrics.timed():
                    outcome = await passes().run(reconciler().reconcile, copy.deepcopy(body))
                    await _publish(body, namespace, name, outcome)
                failures = 0
                wait = min(config.resync_seconds, outcome.next_tick or config.resync_seconds)
            except Exception as err:  # the loop must outlive API hiccups; retry with backoff
                failures += 1
                metrics.RECONCILE_ERRORS.labels(namespace, name).inc()
                wait = min(config.resync_seconds, 2.0**failures)
                log.warning(
                    "%s/%s: reconcile failed (%s); retrying in %.0fs", namespace, name, err, wait
                )
            HEARTBEAT.beat()  # after the pass: a loop still waiting for a thread is not alive
            try:
                await asyncio.wait_for(kick.wait(), timeout=wait)
                await asyncio.sleep(config.debounce_seconds)  # fold bursts of events
            except TimeoutError:
                pass
    finally:
        KICKS.unregister(namespace, name, kick)


async def _publish(body: Obj, namespace: str, name: str, outcome: Outcome) -> None:
    """Save status first, then clear consumed control annotations (so a crash in between
    re-delivers a control the status already records as done), then post Events."""
    kube = reconciler().kube
    if outcome.status is not None:
        stored = await passes().run(
            kube.patch_status, API_VERSION, KIND, namespace, name, outcome.status
        )
        _newer_body(namespace, name, stored)
    if outcome.consumed:
        await passes().run(
            kube.patch_metadata,
            API_VERSION,
            KIND,
            namespace,
            name,
            {"annotations": dict.fromkeys(outcome.consumed)},
        )
    for note in outcome.notes:
        kopf.event(
            kopf.Body(cast(kopf.RawBody, body)),
            type=note.type,
            reason=note.reason,
            message=note.message,
        )
        if note.reason == "Promoted":
            metrics.PROMOTIONS.labels(namespace, name).inc()
        elif note.reason == "RolledBack":
            reason = (outcome.full_status.get("rollback") or {}).get("reason") or "Unknown"
            metrics.ROLLBACKS.labels(namespace, name, str(reason)).inc()
    if outcome.writes:
        log.info("%s/%s: %s", namespace, name, ", ".join(outcome.writes))
    metrics.record_status(namespace, name, outcome.full_status)


def _newer_body(namespace: str, name: str, stored: Obj) -> None:
    """Our status write's answer replaces the body the loop reads next, unless a newer one
    came in meanwhile: the next pass never sees a body older than its own last write."""
    held = BODIES.get((namespace, name))
    if held is not None and resource_version(stored) > resource_version(held):
        BODIES[(namespace, name)] = stored


def _kick_owner(
    type: str | None, body: kopf.Body, labels: kopf.Labels, namespace: str | None, **_: Any
) -> None:
    HEARTBEAT.beat()
    CACHE.observe(dict(body), deleted=type == "DELETED")
    owner = labels.get(LABEL_NAME)
    if owner and namespace:
        KICKS.kick(namespace, owner)


# Changes to generated objects (ours or anyone's) wake the owner's loop: drift is undone at
# once, and status follows the Deployments' progress without polling.
for _group, _version, _plural, _ in WATCHED:
    kopf.on.event(_group, _version, _plural, labels=MANAGED, id=f"kick-owner-{_plural}")(
        _kick_owner
    )


@kopf.on.probe(id="reconcile-loops")
def loops_alive(**_: Any) -> dict[str, float]:
    """Liveness: fail when HarnessDeployments exist but no pass or watch has shown life for
    longer than a few resync periods (kopf's own /healthz stays green when its watchers die;
    nolar/kopf#1145), when a pass has waited that long for a thread (a wedged pool), or when
    the API server has not answered that long while loops run."""
    config = operator_config()
    limit = max(3 * config.resync_seconds, 60.0)
    age = HEARTBEAT.age()
    if KICKS.active() and age > limit:
        raise kopf.PermanentError(f"no reconcile pass or watch activity for {age:.0f}s")
    waited = passes().oldest_wait()
    if waited > limit:
        raise kopf.PermanentError(f"a reconcile pass has waited {waited:.0f}s for a thread")
    silent = LAST_ANSWER.age()
    if KICKS.active() and silent > limit:
        # Loops run and ask (at least every resync), and nothing answers: wedged on a
        # frozen or lost API server. A restart gets fresh connections and watches.
        raise kopf.PermanentError(f"the API server has not answered for {silent:.0f}s")
    return {
        "loops": float(KICKS.active()),
        "last_activity_seconds": round(age, 1),
        "pass_queue_seconds": round(waited, 1),
        "apiserver_silence_seconds": round(silent, 1),
    }

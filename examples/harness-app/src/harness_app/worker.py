"""Worker mode: lease tasks from a queue and run them, `HARNESS_MAX_CONCURRENCY` at a time.

The same agent loop, metrics and drain as the task API; only where tasks come from differs.
The queue protocol is the test bed's (cluster/taskqueue.py): `POST /lease` gives a task or
204, `POST /done/<id>` reports its outcome. A refused kill switch (the budget) or a drain
stops leasing; tasks in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from harness_app.logs import log

if TYPE_CHECKING:
    from harness_app.server import Harness

logger = logging.getLogger("harness_app.worker")
IDLE_SECONDS = 0.2
"""Wait between leases while the queue is empty (or leasing is paused)."""


async def work(harness: Harness, url: str, name: str, stop: asyncio.Event) -> None:
    """Run `HARNESS_MAX_CONCURRENCY` lease loops until `stop` is set, then let them finish
    the tasks they hold."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        loops = [
            asyncio.create_task(_loop(harness, session, url, name, stop))
            for _ in range(harness.config.max_concurrency)
        ]
        await asyncio.gather(*loops)


async def _loop(
    harness: Harness, session: aiohttp.ClientSession, url: str, name: str, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        if harness.draining or harness.spending_stopped():
            await _pause(stop)
            continue
        try:
            task = await _lease(session, url, name)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            log(logger, logging.WARNING, "lease failed", error=type(err).__name__)
            await _pause(stop)
            continue
        if task is None:
            await _pause(stop)
            continue
        outcome = await harness.run_leased(str(task["prompt"]))
        try:
            async with session.post(f"{url}/done/{task['id']}", json={"outcome": outcome}):
                pass
        except (aiohttp.ClientError, TimeoutError):
            log(logger, logging.WARNING, "could not report a task done", task=task["id"])


async def _lease(session: aiohttp.ClientSession, url: str, name: str) -> dict[str, Any] | None:
    async with session.post(f"{url}/lease", json={"worker": name}) as response:
        if response.status == 204:
            return None
        response.raise_for_status()
        data = json.loads(await response.read())
        return data if isinstance(data, dict) else None


async def _pause(stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=IDLE_SECONDS)

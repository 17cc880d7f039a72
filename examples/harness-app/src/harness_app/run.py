"""Run mode (`HARNESS_RUN_TASKS=<n>`): do n tasks, write a run report, exit. A Job's pod.

Every task goes through the same agent loop, timeout, metrics and logs as a task served by
the API or leased by a worker (`Harness.run_task`), with the prompt `HARNESS_RUN_PROMPT`,
`HARNESS_MAX_CONCURRENCY` at a time. When they are done, the run report, one compact JSON
object,

    {"tasks": n, "failed": f, "costUsd": 0.0123, "inputTokens": 1200, "outputTokens": 400,
     "cacheReadTokens": 0, "cacheWriteTokens": 0, "durationSeconds": 3.52}

is written to `HARNESS_REPORT_PATH` (default `/dev/termination-log`, the file a kubelet
reads into the container status's `state.terminated.message`, keeping at most its last 4096
bytes; the report stays far below that). If the file cannot be written the report is
printed on stdout instead, and the run still ends normally. Tokens and cost are those of
every model call of the run, priced exactly as for `harness_cost_usd_total`.

A task failed when it ended with outcome `error`, `timeout` or `cancelled` (the outcomes the
task API answers with a 5xx), or could not start at all (no credentials, unreadable prompt,
or a stop before its turn). `max_turns` and `budget_exceeded` are finished tasks. The exit
status is 0 when no task failed, else 1 (2 stays an invalid configuration).

SIGTERM (the Job's deadline, a deleted pod) stops starting tasks, waits up to
`HARNESS_DRAIN_SECONDS` for the ones in flight, ends the rest as `cancelled`, and still
writes the report. While the tasks run, the probes and `/metrics` are served as in the
other modes (so Prometheus can scrape the run); the listeners never delay the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from harness_app.config import Config
from harness_app.logs import log
from harness_app.pricing import TokenUsage
from harness_app.server import Harness, TaskResult, start_listener

logger = logging.getLogger(__name__)

FAILED_OUTCOMES: Final = frozenset({"error", "timeout", "cancelled"})
LISTENER_SHUTDOWN_SECONDS: Final = 0.5
"""How long closing the listeners may wait for a request in progress (a scrape)."""


@dataclass(frozen=True)
class RunReport:
    tasks: int
    failed: int
    cost_usd: float
    usage: TokenUsage
    duration_seconds: float

    @classmethod
    def of(cls, tasks: int, results: list[TaskResult | None], duration: float) -> RunReport:
        """The report of `tasks` planned tasks, of which `results` ran (None: could not)."""
        usage, cost, failed = TokenUsage(), 0.0, tasks - len(results)
        for result in results:
            if result is None or result.outcome in FAILED_OUTCOMES:
                failed += 1
            if result is not None:
                usage += result.state.usage
                cost += result.state.cost_usd
        return cls(tasks, failed, cost, usage, duration)

    def as_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "failed": self.failed,
            "costUsd": round(self.cost_usd, 10),
            "inputTokens": self.usage.input,
            "outputTokens": self.usage.output,
            "cacheReadTokens": self.usage.cache_read,
            "cacheWriteTokens": self.usage.cache_creation,
            "durationSeconds": round(self.duration_seconds, 3),
        }

    def text(self) -> str:
        return json.dumps(self.as_json(), separators=(",", ":"))


async def run_tasks(
    harness: Harness, tasks: int, prompt: str, stop: asyncio.Event | None = None
) -> RunReport:
    """Run `tasks` tasks, `HARNESS_MAX_CONCURRENCY` at a time; after `stop` is set none is
    started, tasks in flight get `HARNESS_DRAIN_SECONDS` and are then cancelled."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop = stop or asyncio.Event()
    results: list[TaskResult | None] = []
    remaining = iter(range(tasks))
    blocked = harness.cannot_run_reason()
    if blocked is not None:
        log(logger, logging.ERROR, "tasks cannot run", reason=blocked)

    async def lane() -> None:
        for _ in remaining:
            if stop.is_set():
                return
            result = await harness.run_task(prompt)
            results.append(result)

    lanes = asyncio.gather(*(lane() for _ in range(min(tasks, harness.config.max_concurrency))))
    stopped = asyncio.ensure_future(stop.wait())
    waiting: set[asyncio.Future[Any]] = {lanes, stopped}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not lanes.done():
            harness.start_drain()
            log(logger, logging.INFO, "draining", inflight=harness.inflight)
            if not await harness.wait_idle(harness.config.drain_seconds):
                log(logger, logging.WARNING, "drain period over, cancelling")
                harness.cancel_tasks()
            await lanes
    finally:
        stopped.cancel()
    return RunReport.of(tasks, results, loop.time() - started)


def write_report(report: RunReport, path: str) -> bool:
    """Write the report to `path`; print it on stdout if that fails. Whether it was written."""
    text = report.text()
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        log(
            logger,
            logging.WARNING,
            "cannot write the run report, printing it on stdout",
            path=path,
            reason=exc.strerror or type(exc).__name__,
        )
        print(text, flush=True)
        return False
    return True


async def run(config: Config, env: Mapping[str, str]) -> int:
    """Run mode, from start to exit status."""
    assert config.run_tasks is not None
    harness = Harness(config, env)
    separate_metrics = config.metrics_port is not None
    api = harness.app(with_metrics=not separate_metrics, with_tasks=False)
    runners = [
        await start_listener(api, config.host, config.port, "api", LISTENER_SHUTDOWN_SECONDS)
    ]
    if config.metrics_port is not None:
        metrics = harness.metrics_app()
        runners.append(
            await start_listener(
                metrics, config.host, config.metrics_port, "metrics", LISTENER_SHUTDOWN_SECONDS
            )
        )
    log(
        logger,
        logging.INFO,
        "run started",
        tasks=config.run_tasks,
        provider=config.provider.value,
        model=config.model,
        max_concurrency=config.max_concurrency,
        prompt_sha=config.system_prompt.sha256,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        report = await run_tasks(harness, config.run_tasks, config.run_prompt, stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
        for runner in reversed(runners):
            await runner.cleanup()
        await harness.close()
    written = write_report(report, config.report_path)
    log(logger, logging.INFO, "run finished", report_written=written, **report.as_json())
    return 0 if report.failed == 0 else 1

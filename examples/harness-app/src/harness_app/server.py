"""The HTTP side: task API, probes, /info, /metrics, admission control and graceful drain.

Owns the `Harness` (one per process: config, client, metrics, in-flight count, readiness
state) and `serve`, which runs it until SIGTERM and then drains. Admission is a counter,
not a queue: a task beyond `HARNESS_MAX_CONCURRENCY` gets 429 at once, so load shows up at
the autoscaler (`harness_inflight_tasks`) instead of as hidden latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import anthropic
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from harness_app import __version__
from harness_app.agent import Agent, AgentSettings, ProviderHealth, TaskState
from harness_app.config import Config
from harness_app.errors import ProviderError
from harness_app.logs import log
from harness_app.metrics import TASKS_ROUTE, Metrics
from harness_app.providers import (
    ModelClient,
    build_client,
    can_stream,
    check_credentials,
    provider_info,
)
from harness_app.worker import work

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS: Final = 2.0  # after the drain, for responses still being written
_TASK_FIELDS: Final = frozenset({"prompt", "max_turns"})


class BadTaskError(ValueError):
    """The task request is malformed (400)."""


def _parse_task(body: object, max_turns: int) -> tuple[str, int]:
    if not isinstance(body, dict):
        raise BadTaskError("body must be a JSON object")
    unknown = sorted(set(body) - _TASK_FIELDS)
    if unknown:
        raise BadTaskError(f"unknown field(s): {', '.join(unknown)}")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadTaskError("prompt must be a non-empty string")
    turns = body.get("max_turns", max_turns)
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
        raise BadTaskError("max_turns must be an integer >= 1")
    # A caller may lower the cap, never raise it above HARNESS_MAX_TURNS.
    return prompt, min(turns, max_turns)


def _json(payload: Mapping[str, Any], status: int = 200, **headers: str) -> web.Response:
    return web.json_response(dict(payload), status=status, headers=headers or None)


@dataclass(frozen=True)
class TaskResult:
    """How one task ended, and what it did (tokens, cost, turns) up to then."""

    outcome: str
    error_class: str
    retry_after: float | None
    state: TaskState
    duration: float


class Harness:
    """One harness process: everything the handlers share."""

    def __init__(
        self, config: Config, env: Mapping[str, str], client: ModelClient | None = None
    ) -> None:
        self.config = config
        self.env = env
        self.metrics = Metrics(provider=config.provider.value, model=config.model)
        self.health = ProviderHealth()
        self.stream = config.stream and can_stream(config.provider)
        self.client_error: str | None = None
        if client is None:
            try:
                client = build_client(config.provider, task_timeout=config.task_timeout_seconds)
            except (ValueError, anthropic.AnthropicError) as exc:
                # e.g. Foundry refuses to build without a key: report it via readiness.
                self.client_error = f"cannot build the {config.provider} client: {exc}"
        self.client = client
        prompt = config.system_prompt
        self.agent = (
            Agent(
                client,
                AgentSettings(
                    model=config.model,
                    system_prompt=prompt.text or "",
                    price=config.price,
                    max_task_cost_usd=config.max_task_cost_usd,
                    max_retries=config.max_retries,
                    stream=self.stream,
                ),
                self.metrics,
                self.health,
            )
            if client is not None
            else None
        )
        self.inflight = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._deadlines: set[asyncio.Timeout] = set()  # of the tasks in flight
        self._cancelling = False
        self.metrics.build_info.labels(
            version=__version__,
            sdk_version=anthropic.__version__,
            model=config.model,
            provider=config.provider.value,
            prompt_sha=prompt.sha256,
        ).set(1)

    # -- state ---------------------------------------------------------------------------

    def _cannot_run(self) -> tuple[str, str] | None:
        """(error_class, reason) if tasks cannot run at all, whatever the provider says."""
        if self.config.system_prompt.error is not None:
            return "other", self.config.system_prompt.error
        if self.client_error is not None:
            return "auth", self.client_error
        credentials = check_credentials(self.config.provider, self.env)
        if not credentials.present:
            return "auth", credentials.reason
        return None

    def not_ready_reasons(self) -> list[str]:
        reasons = []
        if self.draining:
            reasons.append("draining")
        blocked = self._cannot_run()
        if blocked is not None:
            reasons.append(blocked[1])
        if self.health.rejected is not None:
            status = 401 if self.health.rejected == "auth" else 403
            reasons.append(f"the provider rejected the credentials ({status}) on the last call")
        return reasons

    def start_drain(self) -> None:
        self.draining = True

    def cancel_tasks(self) -> None:
        """End every task in flight now (outcome `cancelled`, answered with 503), by moving
        its deadline: unlike `Task.cancel()`, the handler still writes a response."""
        self._cancelling = True
        now = asyncio.get_running_loop().time()
        for deadline in self._deadlines:
            deadline.reschedule(now)

    async def wait_idle(self, seconds: float) -> bool:
        """Wait until no task is in flight; False if `seconds` passed first."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    # -- handlers ------------------------------------------------------------------------

    async def health_handler(self, request: web.Request) -> web.Response:
        # Liveness: answering at all proves the event loop runs; no external calls.
        return _json({"status": "ok"})

    async def ready_handler(self, request: web.Request) -> web.Response:
        reasons = self.not_ready_reasons()
        if reasons:
            return _json({"ready": False, "reasons": reasons}, status=503)
        return _json({"ready": True})

    async def info_handler(self, request: web.Request) -> web.Response:
        config = self.config
        return _json(
            {
                "provider": config.provider.value,
                "model": config.model,
                **provider_info(config.provider, self.env),
                "system_prompt_source": config.system_prompt.source,
                "system_prompt_sha256": config.system_prompt.sha256,
                "max_concurrency": config.max_concurrency,
                "max_turns": config.max_turns,
                "max_task_cost_usd": config.max_task_cost_usd,
                "task_timeout_seconds": config.task_timeout_seconds,
                "max_retries": config.max_retries,
                "stream": self.stream,
                "pricing": {"source": config.pricing_source, **config.price.as_json()},
                "version": __version__,
                "sdk_version": anthropic.__version__,
            }
        )

    async def metrics_handler(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    def spending_stopped(self) -> bool:
        """Whether the operator's kill switch is set (read at every task: it flips while
        the pod runs, and readiness must not depend on it)."""
        path = self.config.kill_switch_file
        if path is None:
            return False
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip().lower() == "true"
        except OSError:
            return False  # not written yet: the switch is off

    async def task_handler(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await self._task(request)
        outcome = (
            "success"
            if response.status < 400
            else "client_error"
            if response.status < 500
            else "error"
        )
        self.metrics.requests.labels(route=TASKS_ROUTE, outcome=outcome).inc()
        self.metrics.request_duration.labels(route=TASKS_ROUTE).observe(loop.time() - started)
        return response

    async def _task(self, request: web.Request) -> web.Response:
        if self.draining:
            return _json(
                {"error": "draining", "message": "shutting down"}, 503, **{"Retry-After": "1"}
            )
        if self.spending_stopped():
            return _json(
                {"error": "stopped", "message": "spending is stopped by the budget"},
                503,
                **{"Retry-After": "60"},
            )
        try:
            body = await request.json()
        except ValueError:
            return _json({"error": "bad_request", "message": "body is not valid JSON"}, 400)
        try:
            prompt, max_turns = _parse_task(body, self.config.max_turns)
        except BadTaskError as exc:
            return _json({"error": "bad_request", "message": str(exc)}, 400)
        blocked = self._cannot_run()
        if blocked is not None or self.agent is None:
            error_class, reason = blocked or ("other", "no model client")
            return _json({"outcome": "error", "error_class": error_class, "message": reason}, 503)
        if self.inflight >= self.config.max_concurrency:
            return _json(
                {"error": "busy", "message": "too many tasks in flight"},
                429,
                **{"Retry-After": "1"},
            )
        self.inflight += 1
        self.metrics.inflight.inc()
        self._idle.clear()
        try:
            return await self._run(self.agent, prompt, max_turns)
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()
            if self.inflight == 0:
                self._idle.set()

    async def run_leased(self, prompt: str) -> str:
        """Run one task leased from a queue (worker mode); its outcome."""
        result = await self.run_task(prompt)
        return "error" if result is None else result.outcome

    async def run_task(self, prompt: str) -> TaskResult | None:
        """Run one task that did not come through the task API (worker and run modes), with
        the in-flight accounting of a served one; None when tasks cannot run at all (see
        `cannot_run_reason`)."""
        if self.agent is None or self._cannot_run() is not None:
            return None
        self.inflight += 1
        self.metrics.inflight.inc()
        self._idle.clear()
        try:
            return await self.execute(self.agent, prompt, self.config.max_turns)
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()
            if self.inflight == 0:
                self._idle.set()

    def cannot_run_reason(self) -> str | None:
        """Why no task can run at all (prompt unreadable, no client or credentials)."""
        blocked = self._cannot_run()
        if blocked is not None:
            return blocked[1]
        return "no model client" if self.agent is None else None

    async def execute(self, agent: Agent, prompt: str, max_turns: int) -> TaskResult:
        """One task through the agent loop, bounded by the task timeout (and a drain's
        `cancel_tasks`); counted in the task metrics and logged, whoever asked for it."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.config.task_timeout_seconds
        state = TaskState()
        error_class, retry_after = "", None
        timeout = asyncio.timeout_at(deadline)
        self._deadlines.add(timeout)
        try:
            async with timeout:
                outcome = await agent.run(prompt, max_turns, deadline, state)
        except TimeoutError:
            if not timeout.expired():
                raise
            outcome = "cancelled" if self._cancelling else "timeout"
        except ProviderError as exc:
            outcome, error_class, retry_after = "error", exc.error_class, exc.retry_after
        except asyncio.CancelledError:  # the server is going away without a drain
            self._finished("cancelled", "", loop.time() - started, state)
            raise
        finally:
            self._deadlines.discard(timeout)
        duration = loop.time() - started
        self._finished(outcome, error_class, duration, state)
        return TaskResult(outcome, error_class, retry_after, state, duration)

    async def _run(self, agent: Agent, prompt: str, max_turns: int) -> web.Response:
        result = await self.execute(agent, prompt, max_turns)
        outcome, error_class, retry_after, state = (
            result.outcome,
            result.error_class,
            result.retry_after,
            result.state,
        )
        payload: dict[str, Any] = {
            "outcome": outcome,
            "text": state.text,
            "turns": state.turns,
            "tool_calls": state.tool_calls,
            "stop_reason": state.stop_reason,
            "usage": state.usage.as_json(),
            "cost_usd": round(state.cost_usd, 10),
            "model": self.config.model,
            "provider": self.config.provider.value,
        }
        if outcome == "timeout":
            return _json(payload, 504)
        if outcome == "cancelled":
            return _json(payload, 503, **{"Retry-After": "1"})
        if outcome != "error":
            return _json(payload, 200)
        payload["error_class"] = error_class
        if error_class in ("rate_limit", "overloaded"):
            wait = max(1, math.ceil(retry_after)) if retry_after else 1
            return _json(payload, 503, **{"Retry-After": str(wait)})
        return _json(payload, 502)

    def _finished(self, outcome: str, error_class: str, duration: float, state: TaskState) -> None:
        self.metrics.task_finished(
            outcome, error_class, duration, state.turns, state.cost_usd, state.usage.output
        )
        log(
            logger,
            logging.INFO,
            "task finished",
            outcome=outcome,
            error_class=error_class,
            turns=state.turns,
            tool_calls=state.tool_calls,
            duration=round(duration, 3),
            cost_usd=round(state.cost_usd, 6),
            input_tokens=state.usage.input,
            output_tokens=state.usage.output,
        )

    # -- apps ----------------------------------------------------------------------------

    def app(self, *, with_metrics: bool = True, with_tasks: bool = True) -> web.Application:
        """The API and probes (and /metrics, unless it has its own port); without the task
        route in run mode, whose tasks are its own."""
        app = web.Application()
        if with_tasks:
            app.router.add_post(TASKS_ROUTE, self.task_handler)
        app.router.add_get("/health", self.health_handler)
        app.router.add_get("/ready", self.ready_handler)
        app.router.add_get("/info", self.info_handler)
        if with_metrics:
            app.router.add_get("/metrics", self.metrics_handler)
        return app

    def metrics_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics_handler)
        return app


async def start_listener(
    app: web.Application,
    host: str,
    port: int,
    name: str,
    shutdown_timeout: float = SHUTDOWN_GRACE_SECONDS,
) -> web.AppRunner:
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    for address in runner.addresses:
        log(logger, logging.INFO, "listening", listener=name, host=address[0], port=address[1])
    return runner


async def serve(config: Config, env: Mapping[str, str]) -> None:
    """Serve until SIGTERM/SIGINT, then drain: refuse new tasks, turn unready, wait up to
    HARNESS_DRAIN_SECONDS for in-flight tasks, and return."""
    harness = Harness(config, env)
    separate_metrics = config.metrics_port is not None
    api = harness.app(with_metrics=not separate_metrics)
    runners = [await start_listener(api, config.host, config.port, "api")]
    if config.metrics_port is not None:
        metrics = harness.metrics_app()
        runners.append(await start_listener(metrics, config.host, config.metrics_port, "metrics"))
    log(
        logger,
        logging.INFO,
        "started",
        provider=config.provider.value,
        model=config.model,
        stream=harness.stream,
        max_concurrency=config.max_concurrency,
        prompt_sha=config.system_prompt.sha256,
        not_ready=harness.not_ready_reasons(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker = (
        asyncio.create_task(work(harness, config.queue_url, config.worker_name, stop))
        if config.queue_url
        else None
    )
    try:
        await stop.wait()
        harness.start_drain()
        log(logger, logging.INFO, "draining", inflight=harness.inflight)
        if await harness.wait_idle(config.drain_seconds):
            log(logger, logging.INFO, "drained")
        else:
            log(logger, logging.WARNING, "drain period over, cancelling", inflight=harness.inflight)
            harness.cancel_tasks()
            await harness.wait_idle(SHUTDOWN_GRACE_SECONDS)
        if worker is not None:
            await asyncio.wait_for(worker, timeout=SHUTDOWN_GRACE_SECONDS)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
        for runner in reversed(runners):
            await runner.cleanup()
        await harness.close()
    log(logger, logging.INFO, "stopped")

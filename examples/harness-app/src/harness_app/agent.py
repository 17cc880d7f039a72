"""The agent loop: call the model, run the tools it asks for, repeat until it is done.

Owns one task's conversation, the per-task caps (turns, cost; the timeout is the caller's
`asyncio.timeout`), the retry loop around each model call, time to first token, and the
accounting of tokens and cost per call. It also feeds `ProviderHealth`, which remembers
whether the provider last rejected our credentials (readiness).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Final

from anthropic import omit
from anthropic.types import Message, MessageParam, ToolResultBlockParam, ToolUseBlock, Usage

from harness_app.errors import ProviderError, classify, is_retryable, retry_after, retry_delay
from harness_app.logs import log
from harness_app.metrics import Metrics
from harness_app.pricing import Price, TokenUsage, cost_usd
from harness_app.providers import ModelClient
from harness_app.tools import TOOL_PARAMS, TOOLS, ToolError, run_tool

logger = logging.getLogger(__name__)

MAX_TOKENS_PER_TURN: Final = 1024  # bounds the output cost of one model call


class ProviderHealth:
    """Whether the provider's last verdict on our credentials was a rejection.

    Only 401/403 count: a credential problem is this pod's, while 429/529/5xx and timeouts
    are shared by every pod and must not make them all unready at once.
    """

    def __init__(self) -> None:
        self.rejected: str | None = None  # "auth" or "permission"

    def observe_success(self) -> None:
        self.rejected = None

    def observe_error(self, error_class: str) -> None:
        if error_class in ("auth", "permission"):
            self.rejected = error_class


@dataclass
class TaskState:
    """What a task has done so far (reported also when it fails or times out)."""

    turns: int = 0
    tool_calls: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    text: str = ""
    stop_reason: str | None = None


@dataclass(frozen=True)
class AgentSettings:
    model: str
    system_prompt: str
    price: Price
    max_task_cost_usd: float
    max_retries: int
    stream: bool


def usage_of(usage: Usage) -> TokenUsage:
    return TokenUsage(
        input=usage.input_tokens,
        output=usage.output_tokens,
        cache_read=usage.cache_read_input_tokens or 0,
        cache_creation=usage.cache_creation_input_tokens or 0,
    )


class Agent:
    """Runs tasks against one model client; shared by all tasks of the process."""

    def __init__(
        self,
        client: ModelClient,
        settings: AgentSettings,
        metrics: Metrics,
        health: ProviderHealth,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.rng = rng or random.Random()

    async def run(self, prompt: str, max_turns: int, deadline: float, state: TaskState) -> str:
        """Run one task, updating `state` as it goes; returns the outcome (`success`,
        `max_turns` or `budget_exceeded`). Raises `ProviderError` when a model call fails
        for good; the caller's timeout cancels it."""
        messages: list[MessageParam] = [{"role": "user", "content": prompt}]
        while True:
            message = await self._call(messages, deadline)
            state.turns += 1
            usage = usage_of(message.usage)
            cost = cost_usd(usage, self.settings.price)
            self.metrics.record_usage(usage, cost)
            state.usage += usage
            state.cost_usd += cost
            state.stop_reason = message.stop_reason
            state.text = "".join(block.text for block in message.content if block.type == "text")
            if message.stop_reason != "tool_use":
                return "success"
            # The caps stop further spending; a task that already finished keeps its answer.
            if state.cost_usd > self.settings.max_task_cost_usd:
                return "budget_exceeded"
            if state.turns >= max_turns:
                return "max_turns"
            uses = [block for block in message.content if isinstance(block, ToolUseBlock)]
            results = [self._run_tool(block) for block in uses]
            state.tool_calls += len(results)
            messages.append({"role": "assistant", "content": message.content})
            messages.append({"role": "user", "content": results})

    def _run_tool(self, block: ToolUseBlock) -> ToolResultBlockParam:
        # The label takes only our own tool names: a model-invented name must not add series.
        known = block.name if block.name in TOOLS else "unknown"
        try:
            output = run_tool(block.name, block.input)
        except ToolError as exc:
            self.metrics.tool_calls.labels(tool=known, outcome="error").inc()
            log(logger, logging.INFO, "tool failed", tool=known, reason=str(exc))
            return {
                "type": "tool_result",
                "tool_use_id": block.id,
                "content": str(exc),
                "is_error": True,
            }
        self.metrics.tool_calls.labels(tool=known, outcome="success").inc()
        return {"type": "tool_result", "tool_use_id": block.id, "content": output}

    async def _call(self, messages: list[MessageParam], deadline: float) -> Message:
        """One model call with retries. Every attempt, error and retry is counted."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                message = await self._request(messages)
            except Exception as exc:  # the SDK's errors, and Google auth errors on Vertex
                error_class = classify(exc)
                self.metrics.llm_error(error_class)
                self.health.observe_error(error_class)
                hint = retry_after(exc)
                status = getattr(exc, "status_code", None)
                retryable = is_retryable(exc) and attempt < self.settings.max_retries
                delay = retry_delay(exc, attempt, self.rng) if retryable else 0.0
                # Waiting past the task's deadline would only turn this error into a timeout.
                if retryable and loop.time() + delay >= deadline:
                    retryable = False
                log(
                    logger,
                    logging.WARNING if error_class != "other" else logging.ERROR,
                    "model call failed",
                    error_class=error_class,
                    error=type(exc).__name__,
                    status=status,
                    attempt=attempt,
                    retry_in=round(delay, 3) if retryable else None,
                )
                if not retryable:
                    raise ProviderError(error_class, hint, type(exc).__name__) from exc
                self.metrics.llm_retry(error_class)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            self.metrics.llm_success()
            self.health.observe_success()
            return message

    async def _request(self, messages: list[MessageParam]) -> Message:
        settings = self.settings
        system = settings.system_prompt or omit
        if not settings.stream:
            return await self.client.messages.create(
                model=settings.model,
                max_tokens=MAX_TOKENS_PER_TURN,
                system=system,
                messages=messages,
                tools=TOOL_PARAMS,
            )
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_token = True
        async with self.client.messages.stream(
            model=settings.model,
            max_tokens=MAX_TOKENS_PER_TURN,
            system=system,
            messages=messages,
            tools=TOOL_PARAMS,
        ) as stream:
            async for event in stream:
                if first_token and event.type == "content_block_delta":
                    self.metrics.ttft.observe(loop.time() - started)
                    first_token = False
            return await stream.get_final_message()

"""The harness's configuration: everything it reads from the environment, validated once.

The operator renders these variables; the app reads no files but the system prompt. An
invalid value raises `ConfigError` naming the variable, so a bad rollout fails at start
with a clear message. The provider's own variables (keys, base URLs, regions) are read by
the SDK clients themselves (see `providers`); this module only checks that the ones a
provider cannot work without are there and well-formed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from harness_app.pricing import Price, PricingError, builtin_price, parse_pricing


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


class Provider(StrEnum):
    """Where the model is served (the operator's `spec.model.provider`)."""

    ANTHROPIC = "anthropic"
    GATEWAY = "gateway"
    BEDROCK = "bedrock"
    VERTEX = "vertex"
    FOUNDRY = "foundry"


DEFAULT_SYSTEM_PROMPT: Final = (
    "You are a concise assistant running inside harness-app. Use the tools when they help; "
    "answer in a few sentences."
)

# Claude Code's provider switches, honoured when HARNESS_MODEL_PROVIDER is absent.
PROVIDER_SWITCHES: Final = {
    "CLAUDE_CODE_USE_BEDROCK": Provider.BEDROCK,
    "CLAUDE_CODE_USE_VERTEX": Provider.VERTEX,
    "CLAUDE_CODE_USE_FOUNDRY": Provider.FOUNDRY,
}

BASE_URL_ENV: Final = {
    Provider.ANTHROPIC: "ANTHROPIC_BASE_URL",
    Provider.GATEWAY: "ANTHROPIC_BASE_URL",
    Provider.BEDROCK: "ANTHROPIC_BEDROCK_BASE_URL",
    Provider.VERTEX: "ANTHROPIC_VERTEX_BASE_URL",
    Provider.FOUNDRY: "ANTHROPIC_FOUNDRY_BASE_URL",
}

DEFAULT_RUN_PROMPT: Final = "What is 17 + 25? Use the add tool, then answer in one sentence."
DEFAULT_REPORT_PATH: Final = "/dev/termination-log"  # a container's default terminationMessagePath
MAX_RUN_TASKS: Final = 1_000_000

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class SystemPrompt:
    """The system prompt, or why it could not be read (readiness then fails)."""

    text: str | None
    source: str  # the file path, or "built-in"
    error: str | None = None

    @property
    def sha256(self) -> str:
        """A 12-hex-digit SHA-256 prefix of the prompt ("" if it was not read)."""
        if self.text is None:
            return ""
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Config:
    provider: Provider
    model: str
    system_prompt: SystemPrompt
    host: str
    port: int
    metrics_port: int | None  # None: /metrics is served on `port`
    max_concurrency: int
    max_turns: int
    max_task_cost_usd: float
    task_timeout_seconds: float
    max_retries: int
    price: Price
    pricing_source: str  # "built-in" or "HARNESS_PRICING"
    drain_seconds: float
    stream: bool
    queue_url: str | None = None
    """`HARNESS_QUEUE_URL`: worker mode. The harness leases tasks from this queue
    (`POST <url>/lease`, `POST <url>/done/<id>`) instead of only serving `/v1/tasks`."""
    worker_name: str = ""
    """`HARNESS_WORKER_NAME` (e.g. the pod name from a fieldRef): who leased a task."""
    kill_switch_file: str | None = None
    """`HARNESS_KILL_SWITCH_FILE`: while it holds `true`, new tasks get 503 (the operator's
    budget stop); pods stay ready and tasks in flight finish."""
    run_tasks: int | None = None
    """`HARNESS_RUN_TASKS`: run mode (a Job's pod). Do this many tasks, write the run report
    to `report_path` and exit: 0 when every task finished without error, else 1."""
    run_prompt: str = DEFAULT_RUN_PROMPT
    """`HARNESS_RUN_PROMPT`: the prompt of every task in run mode."""
    report_path: str = DEFAULT_REPORT_PATH
    """`HARNESS_REPORT_PATH`: where run mode writes its report (the file a kubelet reads
    into the container's termination message)."""


def _get(env: Mapping[str, str], name: str) -> str | None:
    # The operator may render an empty value for an unset field: treat it as absent.
    value = env.get(name, "").strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={value} is out of range {minimum}..{maximum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, positive: bool) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name}={raw!r} must be a finite number {bound}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def _run_tasks(env: Mapping[str, str]) -> int | None:
    raw = _get(env, "HARNESS_RUN_TASKS")
    if raw is None:
        return None
    # Digits only: int() would also take "+3", "1_000" and other spellings.
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"HARNESS_RUN_TASKS={raw!r} is not a positive integer")
    value = int(raw)
    if value > MAX_RUN_TASKS:
        raise ConfigError(f"HARNESS_RUN_TASKS={value} is out of range 1..{MAX_RUN_TASKS}")
    if _get(env, "HARNESS_QUEUE_URL") is not None:
        raise ConfigError("HARNESS_RUN_TASKS and HARNESS_QUEUE_URL are both set: set at most one")
    return value


def _provider(env: Mapping[str, str]) -> Provider:
    raw = _get(env, "HARNESS_MODEL_PROVIDER")
    if raw is not None:
        try:
            return Provider(raw.lower())
        except ValueError:
            allowed = ", ".join(p.value for p in Provider)
            raise ConfigError(f"HARNESS_MODEL_PROVIDER={raw!r} is not one of {allowed}") from None
    chosen = [name for name in PROVIDER_SWITCHES if _bool(env, name, False)]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} are both set: set at most one")
    return PROVIDER_SWITCHES[chosen[0]] if chosen else Provider.ANTHROPIC


def _check_url(env: Mapping[str, str], name: str) -> None:
    raw = _get(env, name)
    if raw is None:
        return
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL with a host")


def _check_provider_env(provider: Provider, env: Mapping[str, str]) -> None:
    """The variables without which the provider's SDK client cannot be built."""
    _check_url(env, BASE_URL_ENV[provider])
    if provider is Provider.GATEWAY and _get(env, "ANTHROPIC_BASE_URL") is None:
        raise ConfigError("ANTHROPIC_BASE_URL is required for HARNESS_MODEL_PROVIDER=gateway")
    if provider is Provider.BEDROCK and not (
        _get(env, "AWS_REGION") or _get(env, "AWS_DEFAULT_REGION")
    ):
        raise ConfigError(
            "AWS_REGION (or AWS_DEFAULT_REGION) is required for HARNESS_MODEL_PROVIDER=bedrock"
        )
    if provider is Provider.VERTEX and _get(env, "CLOUD_ML_REGION") is None:
        raise ConfigError("CLOUD_ML_REGION is required for HARNESS_MODEL_PROVIDER=vertex")
    if provider is Provider.FOUNDRY:
        resource = _get(env, "ANTHROPIC_FOUNDRY_RESOURCE")
        base_url = _get(env, "ANTHROPIC_FOUNDRY_BASE_URL")
        if (resource is None) == (base_url is None):
            raise ConfigError(
                "set exactly one of ANTHROPIC_FOUNDRY_RESOURCE and ANTHROPIC_FOUNDRY_BASE_URL"
                " for HARNESS_MODEL_PROVIDER=foundry"
            )


def _model(env: Mapping[str, str]) -> str:
    model = _get(env, "ANTHROPIC_MODEL")
    if model is None:
        raise ConfigError(
            "ANTHROPIC_MODEL is required (the model id, e.g. claude-sonnet-4-5-20250929)"
        )
    if any(c.isspace() for c in model):
        raise ConfigError(f"ANTHROPIC_MODEL={model!r} must not contain whitespace")
    return model


def _price(env: Mapping[str, str], model: str) -> tuple[Price, str]:
    raw = _get(env, "HARNESS_PRICING")
    if raw is not None:
        try:
            return parse_pricing(raw), "HARNESS_PRICING"
        except PricingError as exc:
            raise ConfigError(f"HARNESS_PRICING: {exc}") from None
    price = builtin_price(model)
    if price is None:
        raise ConfigError(
            f"no built-in price for ANTHROPIC_MODEL={model!r}: set HARNESS_PRICING, e.g."
            ' {"input": 3.0, "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75}'
            " (USD per million tokens)"
        )
    return price, "built-in"


def read_system_prompt(env: Mapping[str, str]) -> SystemPrompt:
    """The prompt file's content; an unreadable file is reported, not raised, so the pod
    stays up and its readiness says why."""
    path = _get(env, "HARNESS_SYSTEM_PROMPT_FILE")
    if path is None:
        return SystemPrompt(DEFAULT_SYSTEM_PROMPT, "built-in")
    try:
        with open(path, encoding="utf-8") as f:
            return SystemPrompt(f.read(), path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return SystemPrompt(None, path, f"HARNESS_SYSTEM_PROMPT_FILE {path!r}: {reason}")


def load_config(env: Mapping[str, str]) -> Config:
    """Validate the environment; raises `ConfigError` naming the first bad variable."""
    provider = _provider(env)
    model = _model(env)
    _check_provider_env(provider, env)
    price, pricing_source = _price(env, model)
    port = _int(env, "HARNESS_PORT", 8080, minimum=0, maximum=65535)
    metrics_port: int | None = None
    if _get(env, "HARNESS_METRICS_PORT") is not None:
        metrics_port = _int(env, "HARNESS_METRICS_PORT", port, minimum=0, maximum=65535)
        if metrics_port == port and port != 0:  # 0 (any free port) is never "the same"
            metrics_port = None
    return Config(
        provider=provider,
        model=model,
        system_prompt=read_system_prompt(env),
        host=_get(env, "HARNESS_HOST") or "0.0.0.0",
        port=port,
        metrics_port=metrics_port,
        max_concurrency=_int(env, "HARNESS_MAX_CONCURRENCY", 4, minimum=1, maximum=10_000),
        max_turns=_int(env, "HARNESS_MAX_TURNS", 8, minimum=1, maximum=1_000),
        max_task_cost_usd=_float(env, "HARNESS_MAX_TASK_COST_USD", 0.50, positive=True),
        task_timeout_seconds=_float(env, "HARNESS_TASK_TIMEOUT_SECONDS", 120.0, positive=True),
        max_retries=_int(env, "HARNESS_MAX_RETRIES", 3, minimum=0, maximum=20),
        price=price,
        pricing_source=pricing_source,
        drain_seconds=_float(env, "HARNESS_DRAIN_SECONDS", 60.0, positive=False),
        stream=_bool(env, "HARNESS_STREAM", True),
        kill_switch_file=env.get("HARNESS_KILL_SWITCH_FILE") or None,
        queue_url=(env.get("HARNESS_QUEUE_URL") or "").rstrip("/") or None,
        worker_name=env.get("HARNESS_WORKER_NAME", ""),
        run_tasks=_run_tasks(env),
        run_prompt=_get(env, "HARNESS_RUN_PROMPT") or DEFAULT_RUN_PROMPT,
        report_path=_get(env, "HARNESS_REPORT_PATH") or DEFAULT_REPORT_PATH,
    )

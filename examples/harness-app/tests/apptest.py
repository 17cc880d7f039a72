"""Helpers shared by the harness app's tests: the repository's fake model API, a clean
environment, and the harness served in-process on 127.0.0.1 (or as a subprocess, see
`HarnessProcess`). The fixtures are re-exported by `conftest`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fakeapi import FakeModelAPI, ModelBehaviour

from harness_app.config import load_config
from harness_app.server import Harness

MODEL = "claude-sonnet-4-5-20250929"
KEY = "sk-test-0123456789abcdef"
SRC = Path(__file__).resolve().parent.parent / "src"

# Everything the harness or the SDK clients might read: cleared before every test.
_ENV_PREFIXES = ("ANTHROPIC_", "AWS_", "CLAUDE_CODE_", "HARNESS_", "GOOGLE_", "CLOUD_ML_")

Setenv = Callable[..., dict[str, str]]


@pytest.fixture
def fake() -> Iterator[FakeModelAPI]:
    api = FakeModelAPI().start()
    api.accept_key(KEY)
    api.set_model(MODEL, ModelBehaviour())
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def setenv(monkeypatch: pytest.MonkeyPatch, fake: FakeModelAPI) -> Setenv:
    """`setenv(**vars)`: a clean environment for the anthropic provider against the fake,
    with `vars` on top (a value of None removes the variable). Returns the variables set."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)

    def apply(**values: str | None) -> dict[str, str]:
        base: dict[str, str | None] = {
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": fake.url,
            "ANTHROPIC_MODEL": MODEL,
            "HARNESS_HOST": "127.0.0.1",
        }
        base.update(values)
        applied = {}
        for name, value in base.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
                applied[name] = value
        return applied

    return apply


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[Harness, TestClient[Any, Any]]]:
    """The harness configured from os.environ, served on 127.0.0.1."""
    harness = Harness(load_config(os.environ), os.environ)
    try:
        async with TestClient(TestServer(harness.app(), host="127.0.0.1")) as client:
            yield harness, client
    finally:
        await harness.close()


def sample(harness: Harness, name: str, **labels: str) -> float:
    value = harness.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for state that another task changes (a metric: there is no event to await),
    failing after `within` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class HarnessProcess:
    """`python -m harness_app` as a subprocess; its JSON log lines are read as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
        full.update(env)
        full["PYTHONPATH"] = os.pathsep.join([str(SRC), full.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness_app"],
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"message": "<not json>", "raw": line})

    def wait_for(self, message: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """The next log entry with `message` (and `fields`); every line must be JSON."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            self.seen.append(entry)
            assert entry.get("message") != "<not json>", entry
            if entry.get("message") == message and all(
                entry.get(k) == v for k, v in fields.items()
            ):
                return entry

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

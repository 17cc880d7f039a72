"""Test helpers for the local test bed that are not fixtures: Prometheus targets and
queries, polling, and loopback exporters."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.5, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last={last!r}")


class Prometheus:
    """The test bed's Prometheus: register loopback scrape targets and run queries."""

    def __init__(self, url: str, targets_dir: Path) -> None:
        self.url = url
        self.targets_dir = targets_dir

    def add_target(self, port: int, labels: dict[str, str] | None = None) -> Path:
        """Scrape 127.0.0.1:port (file_sd; picked up within a second). Returns the file to
        pass to `remove_target`."""
        path = self.targets_dir / f"target-{uuid.uuid4().hex[:8]}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": labels or {}}]))
        tmp.rename(path)  # atomic: Prometheus never reads half a file
        return path

    def remove_target(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def query(self, expr: str) -> list[dict[str, Any]]:
        qs = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

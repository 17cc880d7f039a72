"""The operator image installs `requirements.lock` (with hashes): it must be exactly what
`uv.lock` says, or the image would run other versions than the tests do."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def uv() -> str:
    version = re.search(r"^UV_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert version is not None
    cache = Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness-operator"))
    return str(cache / f"uv-{version.group(1)}" / "bin" / "uv")


def test_requirements_lock_is_exported_from_uv_lock() -> None:
    exported = subprocess.run(
        [
            uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    body = [line for line in exported.splitlines() if not line.startswith("#")]
    committed = [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if not line.startswith("#")
    ]
    assert body == committed, "run `make requirements`"

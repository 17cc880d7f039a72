"""Writing generated files, and checking that committed copies are current.

Shared by `crdgen` and `docs`: both render a string deterministically, then either write it
or (`--check`) compare it with the committed file and explain how to fix a stale one.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

MAX_DIFF_LINES = 80


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated sub-objects out in full instead of as YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(obj: Any) -> str:
    """Deterministic YAML: sorted keys, block style, no anchors."""
    return yaml.dump(
        obj,
        Dumper=_NoAliasDumper,
        sort_keys=True,
        default_flow_style=False,
        width=100,
        allow_unicode=True,
    )


def write_or_check(path: Path, content: str, *, check: bool, command: str) -> int:
    """Write `content` to `path`, or with `check` compare it. Returns a process exit code."""
    if not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path}")
        return 0
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if current == content:
        print(f"{path} is up to date")
        return 0
    diff = list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            content.splitlines(keepends=True),
            fromfile=f"{path} (committed)",
            tofile=f"{path} (generated)",
        )
    )
    state = "is stale" if path.exists() else "is missing"
    print(f"{path} {state}; regenerate it with `{command}`.", file=sys.stderr)
    sys.stderr.writelines(diff[:MAX_DIFF_LINES])
    if len(diff) > MAX_DIFF_LINES:
        print(f"... ({len(diff) - MAX_DIFF_LINES} more diff lines)", file=sys.stderr)
    return 1

"""Flux's health verdict on an object, from the real kstatus library.

Flux's kustomize-controller decides `wait: true` and `healthChecks` with kstatus
(sigs.k8s.io/cli-utils `pkg/kstatus/status`). `build.sh kstatus` compiles
cluster/kstatus/main.go against the version pinned as CLI_UTILS_VERSION in versions.env;
`verdict()` runs that binary on one object. Tests use it to check the conditions the operator
publishes against the library itself, not against a re-implementation of its rules.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

from localcluster import CACHE, HERE, VERSIONS

BINARY = CACHE / f"kstatus-{VERSIONS['CLI_UTILS_VERSION']}" / "kstatus"


@functools.cache
def binary() -> Path:
    """The kstatus binary, built first if it is missing or older than main.go (once per
    process; a no-op of a few milliseconds when it is up to date)."""
    subprocess.run(["bash", str(HERE / "build.sh"), "kstatus"], check=True, timeout=600)
    return BINARY


def verdict(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as Flux computes them: status is one of InProgress, Failed,
    Current, Terminating, NotFound or Unknown."""
    proc = subprocess.run(
        [str(binary())],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kstatus failed: {proc.stderr.strip()}")
    result = json.loads(proc.stdout)
    return str(result["status"]), str(result["message"])

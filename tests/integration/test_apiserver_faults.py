"""The API server frozen or killed mid-release (issue 11, fault tests).

- Frozen (SIGSTOP: it accepts connections and answers nothing): the operator's liveness
  fails while it is wedged — so the kubelet would restart it — and when the API server thaws
  the release carries on to the end. The freeze lasts as long as liveness needs to notice
  (its limit is a minute at the test operator's 2 s resync): a little over a minute.
- Killed (SIGKILL, then started again with the same command line): the operator, never
  restarted, finishes the release once the API server is back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import localcluster
from scenarios import Releases, release_spec
from testbed import OperatorProcess, eventually

Given = Callable[[str], Releases]
V1, V2 = "ghcr.io/acme/agent:1.0", "ghcr.io/acme/agent:1.1"
LIVENESS_LIMIT = 60.0  # max(3 x resync, 60 s)


def apiserver_pid() -> int:
    """The test bed's kube-apiserver (started by kwokctl, or again by a test below)."""
    marker = str(localcluster.RUN_DIR)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/kube-apiserver") and marker.encode() in argv[0]:
            return int(entry.name)
    raise AssertionError("no kube-apiserver of the test bed is running")


@pytest.fixture
def freezer() -> Iterator[Callable[[], None]]:
    pid = apiserver_pid()
    frozen: list[int] = []

    def freeze() -> None:
        os.kill(pid, signal.SIGSTOP)
        frozen.append(pid)

    try:
        yield freeze
    finally:
        if frozen:
            os.kill(pid, signal.SIGCONT)  # never leave the test bed frozen


def test_a_frozen_api_server_fails_liveness_and_the_release_resumes_after(
    releases: Given, operator: OperatorProcess, freezer: Callable[[], None]
) -> None:
    agent = releases("agent").deployed(release_spec(V1, steps=(20, 40, 60), interval="4s"))
    before = agent.status()["stableRevision"]
    agent.new_image(V2)
    eventually(lambda: agent.status().get("currentStep") == 1, timeout=60, what="step 2")

    freezer()
    frozen_at = time.monotonic()
    eventually(lambda: not operator.healthy(), timeout=LIVENESS_LIMIT + 30, what="liveness to fail")
    noticed = time.monotonic() - frozen_at
    os.kill(apiserver_pid(), signal.SIGCONT)

    eventually(operator.healthy, timeout=60, what="liveness to recover")
    status = agent.wait_for_phase("Ready", timeout=90, release_of=before)
    assert status["stableRevision"] != before
    assert noticed >= LIVENESS_LIMIT - 5, f"liveness failed too early ({noticed:.0f}s)"
    print(f"LIVENESS FAILED {noticed:.0f} s INTO THE FREEZE")


def test_a_killed_api_server_comes_back_and_the_release_resumes(
    releases: Given, operator: OperatorProcess, tmp_path: Path
) -> None:
    agent = releases("agent").deployed(release_spec(V1, steps=(20, 40, 60), interval="4s"))
    before = agent.status()["stableRevision"]
    agent.new_image(V2)
    eventually(lambda: agent.status().get("currentStep") == 1, timeout=60, what="step 2")

    pid = apiserver_pid()
    proc = Path(f"/proc/{pid}")
    argv = [a.decode() for a in proc.joinpath("cmdline").read_bytes().split(b"\0") if a]
    cwd = os.readlink(proc / "cwd")
    env = dict(
        line.split("=", 1)
        for line in proc.joinpath("environ").read_bytes().decode().split("\0")
        if "=" in line
    )
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not proc.exists() or b"Z" in _state(proc), timeout=10, what="it to die")
    failed = operator.log_path.read_text().count("reconcile failed")
    eventually(
        lambda: operator.log_path.read_text().count("reconcile failed") > failed,
        timeout=30,
        what="the operator to meet the outage",
    )
    with (tmp_path / "kube-apiserver.log").open("wb") as log:
        # Started again as kwokctl started it; the test bed's `down` finds it by its
        # command line, like every other component.
        subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
    eventually(localcluster.apiserver_healthy, timeout=60, what="the API server back")

    status = agent.wait_for_phase("Ready", timeout=90, release_of=before)
    assert status["stableRevision"] != before
    assert operator.healthy(), "the operator was not restarted and is healthy"


def _state(proc: Path) -> bytes:
    try:
        return proc.joinpath("stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return b"Z"

"""The operator SIGKILLed at random points of ten releases in a row (a seeded draw, so a
failure replays): every healthy release is promoted and every bad one rolled back, as if
nothing had happened (issue 11, fault tests). Bounded: ten releases of one 2 s step."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from scenarios import Releases, release_spec
from testbed import OperatorProcess, eventually

Given = Callable[[str], Releases]
RELEASES = 10
BAD = {2, 5, 8}  # these revisions break: error rate 40 %


def test_releases_end_right_whatever_moment_the_operator_is_killed(
    releases: Given, operator: OperatorProcess
) -> None:
    rng = random.Random(20261202)
    agent = releases("agent").deployed(
        release_spec("ghcr.io/acme/agent:1.0", steps=(50,), interval="2s")
    )
    outcomes = []
    for n in range(1, RELEASES + 1):
        agent.canary_behaves(error_rate=0.4 if n in BAD else 0.0)
        old = {agent.status().get("stableRevision"), agent.status().get("canaryRevision")}
        agent.new_image(f"ghcr.io/acme/agent:1.{n}")
        revision = eventually(
            lambda o=old: (r := agent.status().get("canaryRevision")) not in (o | {None}) and r,
            timeout=30,
            what=f"release {n} to start",
        )
        time.sleep(rng.uniform(0.0, 3.0))  # the random point of the kill: not a wait for anything
        operator.kill()
        operator.start()
        status = eventually(
            lambda r=revision: (
                (s := agent.status()).get("canaryRevision") == r
                and s.get("phase") in ("Ready", "RolledBack")
                and s
            ),
            timeout=90,
            what=f"release {n} to end",
        )
        outcomes.append(status["phase"])
    expected = ["RolledBack" if n in BAD else "Ready" for n in range(1, RELEASES + 1)]
    assert outcomes == expected
    assert agent.canary_weight() == 0

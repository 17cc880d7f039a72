"""`python -m harness_operator.sim`: run the traffic simulation for one HarnessDeployment until
SIGINT/SIGTERM or `--duration` seconds, serving /metrics on 127.0.0.1.

The first line on stdout is `serving http://127.0.0.1:<port>/metrics` (useful with
`--port 0`); the last one gives the requests each track got.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import fields
from types import FrameType

import click

from harness_operator.sim.traffic import TrackBehaviour, TrafficSim

BEHAVIOUR_FIELDS = tuple(f.name for f in fields(TrackBehaviour))


def parse_setting(text: str) -> tuple[str, str, float]:
    """`canary.error_rate=0.2` → ("canary", "error_rate", 0.2)."""
    key, sep, value = text.partition("=")
    track, dot, field = key.strip().partition(".")
    if not sep or not dot or track not in ("stable", "canary") or field not in BEHAVIOUR_FIELDS:
        raise click.BadParameter(
            f"expected TRACK.FIELD=VALUE with TRACK stable or canary and FIELD one of"
            f" {', '.join(BEHAVIOUR_FIELDS)}; got {text!r}",
            param_hint="--set",
        )
    try:
        return track, field, float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number", param_hint="--set") from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--namespace", required=True, help="Namespace of the HarnessDeployment.")
@click.option("--name", required=True, help="Name of the HarnessDeployment.")
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1 (0: any free).")
@click.option("--rps", default=20.0, show_default=True, help="Requests per second.")
@click.option("--seed", type=int, default=None, help="Seed of outcomes and latencies.")
@click.option("--ab-share", default=0.1, show_default=True, help="Share with the A/B header.")
@click.option(
    "--duration", type=float, default=None, help="Stop after this many seconds (default: never)."
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="TRACK.FIELD=VALUE",
    help="Track behaviour, e.g. canary.error_rate=0.2 (repeatable).",
)
@click.option(
    "--kubeconfig", envvar="KUBECONFIG", default=None, help="Kubeconfig file ($KUBECONFIG)."
)
def main(
    namespace: str,
    name: str,
    port: int,
    rps: float,
    seed: int | None,
    ab_share: float,
    duration: float | None,
    settings: tuple[str, ...],
    kubeconfig: str | None,
) -> None:
    """Simulate traffic and telemetry for one HarnessDeployment."""
    parsed = [parse_setting(s) for s in settings]
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    from harness_operator.kube.client import Kube  # the kubernetes client is slow to import

    sim = TrafficSim(Kube(), namespace, name, rps=rps, seed=seed, ab_share=ab_share)
    for track, field, value in parsed:
        sim.set_track(track, **{field: value})
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    deadline = None if duration is None else time.monotonic() + duration
    bound = sim.start(port)
    click.echo(f"serving http://127.0.0.1:{bound}/metrics", nl=True)
    try:
        while not stopping.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        sim.stop()
    counts = sim.counts()
    click.echo(" ".join(f"{track}={count}" for track, count in counts.items()))


if __name__ == "__main__":
    main()

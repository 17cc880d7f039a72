"""`harness-operator run`: the operator process, on the current kubeconfig."""

from __future__ import annotations

import logging
import os
import sys
import threading

import click
import kopf
import prometheus_client

from harness_operator import __version__
from harness_operator.config import OperatorConfig, leader_election
from harness_operator.handlers.startup import NAMESPACED_ENV


@click.group()
@click.version_option(__version__, prog_name="harness-operator")
def main() -> None:
    """harness-operator: AI-agent harnesses with metric-gated canary releases."""


def allow_deep_objects() -> None:
    """Let the process read any object the apiserver stores. The apiserver's JSON parser
    allows 10,000 levels of nesting in free-form fields; Python's default recursion limit
    (1,000) makes kopf's watch decoding and deep copies fail on a few hundred, before our
    own validation can refuse the spec with its path (api/spec.py, MAX_DEPTH). Since 3.11,
    Python-to-Python calls do not grow the C stack; the C parts (json) do, so threads get
    more than the usual 8 MiB."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 50_000))
    threading.stack_size(32 * 1024 * 1024)


@main.command()
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Watch only these namespaces (repeatable). Default: all namespaces.",
)
@click.option(
    "--liveness",
    default="http://127.0.0.1:8080/healthz",
    show_default=True,
    help="Liveness endpoint URL; the pod chart binds it to 0.0.0.0.",
)
@click.option(
    "--metrics-address",
    default="127.0.0.1:9100",
    show_default=True,
    envvar="HARNESS_METRICS_ADDRESS",
    help="host:port of the Prometheus /metrics endpoint, or 'off'.",
)
@click.option("--verbose", is_flag=True, help="Log kopf's own decisions too.")
@click.option("--log-json", is_flag=True, help="Log as JSON lines.")
def run(
    namespaces: tuple[str, ...], liveness: str, metrics_address: str, verbose: bool, log_json: bool
) -> None:
    """Run the operator against the cluster of the current kubeconfig."""
    config = OperatorConfig.from_env()  # fail fast, naming the variable, on a bad setting
    leader_election()
    if config.prometheus_url is None:
        click.echo(
            "harness-operator: no Prometheus configured (HARNESS_PROMETHEUS_URL; Helm value"
            " prometheus.address): releases whose analysis names no"
            " analysis.prometheus.address are held before any traffic",
            err=True,
        )
    if metrics_address != "off":
        host, _, port = metrics_address.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter(
                f"expected host:port, not {metrics_address!r}", param_hint="--metrics-address"
            )
        prometheus_client.start_http_server(int(port), addr=host)
    if namespaces:
        os.environ[NAMESPACED_ENV] = ",".join(namespaces)
    allow_deep_objects()
    # Importing registers the handlers with kopf's default registry.
    import harness_operator.handlers  # noqa: F401

    kopf.configure(
        verbose=verbose, log_format=kopf.LogFormat.JSON if log_json else kopf.LogFormat.FULL
    )
    if not verbose:
        # kopf logs every watch-event handler call; our own log says what changed.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=liveness,
    )

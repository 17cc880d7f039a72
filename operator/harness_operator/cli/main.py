"""`harness-operator run`: the operator process, on the current kubeconfig."""

from __future__ import annotations

import click
import kopf

from harness_operator import __version__


@click.group()
@click.version_option(__version__, prog_name="harness-operator")
def main() -> None:
    """harness-operator: AI-agent harnesses with metric-gated canary releases."""


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
@click.option("--verbose", is_flag=True, help="Log kopf's own decisions too.")
@click.option("--log-json", is_flag=True, help="Log as JSON lines.")
def run(namespaces: tuple[str, ...], liveness: str, verbose: bool, log_json: bool) -> None:
    """Run the operator against the cluster of the current kubeconfig."""
    # Importing registers the handlers with kopf's default registry.
    import harness_operator.handlers  # noqa: F401

    kopf.configure(
        verbose=verbose, log_format=kopf.LogFormat.JSON if log_json else kopf.LogFormat.FULL
    )
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=liveness,
    )

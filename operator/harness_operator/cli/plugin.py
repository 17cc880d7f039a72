"""`kubectl harness`: the kubectl plugin (console script `kubectl-harness`).

kubectl runs any `kubectl-<name>` executable on PATH as `kubectl <name>`. The plugin reads a
HarnessDeployment and shows where its release stands (`status`, `watch`, `list`), and asks
the operator for manual actions by setting control annotations (`promote`, `abort`,
`retry`, `pause`, `resume`): the operator acts on them and records what it consumed in
the status, so the plugin never changes the spec or the status itself.

Everything the commands need from outside (the Kube client, the kubeconfig's namespace, the
clocks, whether stdout is a terminal) comes from a `Deps` object in click's context, so
tests pass a fake one: `CliRunner().invoke(cli, args, obj=Deps(...))`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Final, NoReturn, Protocol, TypeVar

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness_operator import GROUP
from harness_operator.api.resource import API_VERSION, KIND
from harness_operator.cli.view import (
    PHASE_STYLES,
    ReleaseView,
    format_age,
    parse_time,
    render,
    summary,
)

ANNOTATION_PROMOTE: Final = f"{GROUP}/promote"
ANNOTATION_ABORT: Final = f"{GROUP}/abort"
ANNOTATION_RETRY: Final = f"{GROUP}/retry"
ANNOTATION_PAUSE: Final = f"{GROUP}/pause"
ANNOTATION_RESUME: Final = f"{GROUP}/resume"

EXIT_SUCCEEDED: Final = 0
EXIT_ERROR: Final = 1
"""Any error: the HarnessDeployment does not exist, the API refused, a usage error."""
EXIT_FAILED: Final = 2
"""`watch`: the release ended RolledBack, or the HarnessDeployment is Failed."""
EXIT_TIMEOUT: Final = 3
WATCH_INTERVAL: Final = 0.5
"""Seconds between two reads in `watch` (the live view refreshes twice a second)."""


class PluginKube(Protocol):
    """What the plugin needs from `harness_operator.kube.client.Kube`."""

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None: ...

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]: ...

    def patch_metadata(
        self, api_version: str, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]: ...


def make_kube(kubeconfig: str | None, context: str | None) -> PluginKube:
    """A Kube on the given kubeconfig and context (default: $KUBECONFIG or ~/.kube/config
    and its current context; in a pod, its ServiceAccount)."""
    from kubernetes import client, config

    from harness_operator.kube.client import USER_AGENT, Kube, load_api_client

    if kubeconfig is None and context is None:
        return Kube(load_api_client())
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, client_configuration=configuration
    )
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return Kube(api)


def kubeconfig_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig context (the current one unless named), else
    `default`, as kubectl does."""
    from kubernetes import config

    try:
        contexts, current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=kubeconfig
        )
    except (config.ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


def _stdout_isatty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass
class Deps:
    """The outside world of the commands; tests replace any of it."""

    make_kube: Callable[[str | None, str | None], PluginKube] = make_kube
    default_namespace: Callable[[str | None, str | None], str] = kubeconfig_namespace
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    time_ns: Callable[[], int] = time.time_ns
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    isatty: Callable[[IO[str]], bool] = _stdout_isatty


@dataclass
class Session:
    """Per-invocation state: the global options and a lazily made client."""

    deps: Deps
    namespace: str
    kubeconfig: str | None
    context: str | None
    _kube: PluginKube | None = None

    @property
    def kube(self) -> PluginKube:
        if self._kube is None:
            try:
                self._kube = self.deps.make_kube(self.kubeconfig, self.context)
            except Exception as err:
                fail(f"cannot load the Kubernetes configuration: {err}")
        return self._kube

    def console(self) -> Console:
        """A console on the current stdout: colours and live redraws only on a terminal."""
        stream = sys.stdout
        tty = self.deps.isatty(stream)
        # On a terminal NO_COLOR still applies (rich reads it when no_color is None).
        return Console(
            file=stream, force_terminal=tty, no_color=None if tty else True, highlight=False
        )

    def get(self, name: str) -> dict[str, Any]:
        """The HarnessDeployment, or exit 1 saying it does not exist."""
        kube = self.kube
        try:
            obj = kube.get(API_VERSION, KIND, self.namespace, name)
        except Exception as err:
            fail(f"cannot read harnessdeployment {self.namespace}/{name}: {_reason(err)}")
        if obj is None:
            fail(f'harnessdeployment "{name}" not found in namespace "{self.namespace}"')
        return obj


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _reason(err: Exception) -> str:
    """An API error in one line (ApiException's str spans headers and body)."""
    status, reason = getattr(err, "status", None), getattr(err, "reason", None)
    if status is not None:
        return f"{status} {reason or ''}".strip()
    return str(err) or type(err).__name__


# --- the command group ---------------------------------------------------------------------


class _UsageError(click.UsageError):
    """A usage error that exits 1, not click's 2, which `watch` reserves for a failed
    release."""

    exit_code = EXIT_ERROR

    def __init__(self, err: click.UsageError) -> None:
        super().__init__(err.format_message(), err.ctx)


class _ExitOneOnUsageErrors(click.Command):
    """Usage errors exit 1 (a mixin for our command and group classes)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            raise _UsageError(err) from err


class _Command(_ExitOneOnUsageErrors):
    """A command whose usage errors exit 1."""


class _Group(_ExitOneOnUsageErrors, click.Group):
    """The plugin's group: usage errors exit 1, its commands' too."""

    command_class = _Command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as err:
            raise _UsageError(err) from err


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="Namespace of the HarnessDeployment (default: the kubeconfig context's, or default).",
)
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    default=None,
    help="Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).",
)
@click.option("--context", default=None, help="Kubeconfig context (default: the current one).")
@click.version_option(package_name="harness-operator", prog_name="kubectl-harness")
@click.pass_context
def cli(
    ctx: click.Context, namespace: str | None, kubeconfig: str | None, context: str | None
) -> None:
    """Watch and steer the releases of HarnessDeployments (harness.dev/v1alpha1)."""
    deps = ctx.obj if isinstance(ctx.obj, Deps) else Deps()
    # KUBECONFIG may list several files; the kubernetes client merges them itself.
    resolved = namespace or deps.default_namespace(kubeconfig, context)
    ctx.obj = Session(deps=deps, namespace=resolved, kubeconfig=kubeconfig, context=context)


GLOBAL_OPTIONS = ("-n", "--namespace", "--kubeconfig", "--context")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move the global options to the front, so that they work anywhere on the line, as in
    kubectl (`kubectl harness status web -n agents`)."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            rest += argv[index:]
            break
        name = token.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and "=" in token:
            front.append(token)
        elif token in GLOBAL_OPTIONS and index + 1 < len(argv):
            front += argv[index : index + 2]
            index += 1
        elif token.startswith("-n") and len(token) > 2 and not token.startswith("--"):
            front.append(token)  # -nagents
        else:
            rest.append(token)
        index += 1
    return front + rest


def main() -> None:
    """Console script entry point."""
    cli(args=hoist_global_options(sys.argv[1:]), prog_name="kubectl harness")


# --- status, list --------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: the raw .status.",
)
@click.pass_obj
def status(session: Session, name: str, output: str) -> None:
    """Show where the release of NAME stands."""
    obj = session.get(name)
    if output == "json":
        click.echo(json.dumps(obj.get("status") or {}, indent=2, sort_keys=True))
        return
    session.console().print(render(ReleaseView.from_object(obj), now=session.deps.now()))


@cli.command("list")
@click.option("-A", "--all-namespaces", is_flag=True, help="List in every namespace.")
@click.pass_obj
def list_(session: Session, all_namespaces: bool) -> None:
    """List HarnessDeployments with their phase, step and weight."""
    namespace = None if all_namespaces else session.namespace
    kube = session.kube
    try:
        items = kube.list(API_VERSION, KIND, namespace)
    except Exception as err:
        fail(f"cannot list harnessdeployments: {_reason(err)}")
    if not items:
        where = "any namespace" if all_namespaces else f'namespace "{session.namespace}"'
        click.echo(f"No HarnessDeployments in {where}.")
        return
    now = session.deps.now()
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ["NAMESPACE"] if all_namespaces else []
    for column in [*columns, "NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "AGE"]:
        table.add_column(column, no_wrap=True)
    for obj in sorted(
        items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    ):
        view = ReleaseView.from_object(obj)
        created = parse_time(obj["metadata"].get("creationTimestamp"))
        row: list[str | Text] = [view.namespace or ""] if all_namespaces else []
        row += [
            view.name or "",
            Text(view.phase or "Unknown", style=PHASE_STYLES.get(view.phase or "", "")),
            view.step_text or "-",
            f"{view.canary_weight}%",
            view.stable_revision or "-",
            (view.canary_revision if view.canary_revision != view.stable_revision else None) or "-",
            format_age((now - created).total_seconds()) if created else "-",
        ]
        table.add_row(*row)
    session.console().print(table)


# --- manual actions ------------------------------------------------------------------------


def _promote_problem(view: ReleaseView) -> str | None:
    if view.phase in ("Promoting", "Finalising"):
        return f"it is already {view.phase}"
    if view.phase not in ("Progressing", "Paused"):
        return f"no release is in flight (phase {view.phase or 'unknown'})"
    return None


def _abort_problem(view: ReleaseView) -> str | None:
    if view.phase == "Finalising":
        return "stable already runs the new revision; the release is Finalising"
    if view.phase not in ("Progressing", "Paused", "Promoting"):
        return f"no release is in flight (phase {view.phase or 'unknown'})"
    return None


def _retry_problem(view: ReleaseView) -> str | None:
    if view.phase != "RolledBack":
        return f"it is {view.phase or 'in an unknown phase'}, not RolledBack"
    return None


def _pause_problem(view: ReleaseView) -> str | None:
    if view.is_paused:
        return "it is already paused"
    if view.phase != "Progressing":
        return f"only a Progressing release can be paused (phase {view.phase or 'unknown'})"
    return None


def _resume_problem(view: ReleaseView) -> str | None:
    if not view.is_paused:
        return f"it is not paused (phase {view.phase or 'unknown'})"
    return None


def _request(
    session: Session,
    name: str,
    verb: str,
    action: str,
    annotation: str,
    value: str,
    problem: Callable[[ReleaseView], str | None],
    force: bool,
) -> None:
    view = ReleaseView.from_object(session.get(name))
    target = f"{session.namespace}/{name}"
    if (why := problem(view)) is not None and not force:
        fail(f"cannot {verb} harnessdeployment {target}: {why} (--force requests it anyway)")
    try:
        session.kube.patch_metadata(
            API_VERSION, KIND, session.namespace, name, {"annotations": {annotation: value}}
        )
    except Exception as err:
        fail(f"cannot annotate harnessdeployment {target}: {_reason(err)}")
    forced = f" despite: {why}" if why is not None else ""
    click.echo(f"{action} requested for harnessdeployment {target} ({annotation}={value}){forced}")


F = TypeVar("F", bound=Callable[..., Any])


def _force_option(fn: F) -> F:
    return click.option(
        "--force", is_flag=True, help="Request it even when the phase says it makes no sense."
    )(fn)


@cli.command()
@click.argument("name")
@click.option("--full", is_flag=True, help="Skip the remaining steps and analysis: promote now.")
@_force_option
@click.pass_obj
def promote(session: Session, name: str, full: bool, force: bool) -> None:
    """Move the release of NAME to its next step (with --full: promote it now)."""
    value = f"{'full' if full else 'step'}@{session.deps.time_ns()}"
    action = "full promotion" if full else "promotion to the next step"
    _request(session, name, "promote", action, ANNOTATION_PROMOTE, value, _promote_problem, force)


def _action(
    verb: str, annotation: str, problem: Callable[[ReleaseView], str | None], doc: str
) -> None:
    """Register a command that writes one control annotation (a fresh nonce as value)."""

    @click.argument("name")
    @_force_option
    @click.pass_obj
    def command(session: Session, name: str, force: bool) -> None:
        value = str(session.deps.time_ns())
        _request(session, name, verb, verb, annotation, value, problem, force)

    command.__doc__ = doc
    cli.command(verb)(command)


_action("abort", ANNOTATION_ABORT, _abort_problem, "Roll the release of NAME back now.")
_action(
    "retry", ANNOTATION_RETRY, _retry_problem, "Release the rolled-back revision of NAME again."
)
_action(
    "pause",
    ANNOTATION_PAUSE,
    _pause_problem,
    "Hold the release of NAME at its current weight (analysis and rollback go on).",
)
_action("resume", ANNOTATION_RESUME, _resume_problem, "Let a paused release of NAME go on.")


# --- watch ---------------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Give up after this many seconds (exit 3). Default: wait until the release ends.",
)
@click.pass_obj
def watch(session: Session, name: str, timeout: float | None) -> None:
    """Follow NAME until its release ends: exit 0 when Ready, 2 when RolledBack or Failed,
    3 on timeout. A status the operator wrote before the latest spec change never counts
    as the end. On a terminal the panel is redrawn; otherwise one line per change."""
    deps = session.deps
    console = session.console()
    deadline = None if timeout is None else deps.monotonic() + timeout
    target = f"{session.namespace}/{name}"
    view = ReleaseView.from_object(session.get(name))

    def poll() -> ReleaseView:
        try:
            obj = session.kube.get(API_VERSION, KIND, session.namespace, name)
        except Exception as err:  # keep watching through API hiccups
            console.print(f"cannot read {target}: {_reason(err)}; retrying", style="yellow")
            return view
        if obj is None:
            fail(f"harnessdeployment {target} was deleted")
        return ReleaseView.from_object(obj)

    def timed_out() -> bool:
        return deadline is not None and deps.monotonic() >= deadline

    if console.is_terminal:
        footer = Text(f"watching {target}; Ctrl-C to stop", style="dim")
        with Live(
            Group(render(view, deps.now()), footer),
            console=console,
            refresh_per_second=2,
            auto_refresh=False,
        ) as live:
            while view.outcome is None and not timed_out():
                deps.sleep(WATCH_INTERVAL)
                view = poll()
                live.update(Group(render(view, deps.now()), footer), refresh=True)
    else:
        last = None
        while True:
            line = summary(view)
            if line != last:
                console.print(f"{deps.now():%H:%M:%S} {line}", soft_wrap=True)
                last = line
            if view.outcome is not None or timed_out():
                break
            deps.sleep(WATCH_INTERVAL)
            view = poll()
    _finish(view, target, timeout)


def _finish(view: ReleaseView, target: str, timeout: float | None) -> NoReturn:
    if view.outcome == "succeeded":
        click.echo(f"{target} is Ready on revision {view.stable_revision or 'unknown'}")
        raise click.exceptions.Exit(EXIT_SUCCEEDED)
    if view.outcome == "failed":
        detail = ""
        if view.phase == "RolledBack" and view.rollback is not None:
            detail = f": {view.rollback.reason or 'rolled back'}"
            if view.rollback.check:
                detail += f" (check {view.rollback.check})"
        elif view.message:
            detail = f": {view.message}"
        click.echo(f"{target} is {view.phase}{detail}", err=True)
        raise click.exceptions.Exit(EXIT_FAILED)
    waited = "" if timeout is None else f" after {timeout:g}s"
    click.echo(f"timed out{waited}: {target} is {view.phase or 'Unknown'}", err=True)
    raise click.exceptions.Exit(EXIT_TIMEOUT)

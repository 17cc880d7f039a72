"""Operator-wide kopf settings, fixed on day one because they are persisted on live objects."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from harness_operator import GROUP

FINALIZER = f"{GROUP}/finalizer"
NAMESPACED_ENV = "HARNESS_WATCH_NAMESPACES"
"""Set by `harness-operator run --namespace ...`: the operator watches only those."""
DIFFBASE_KEY = "last-handled-configuration"


def configure(settings: kopf.OperatorSettings) -> None:
    """Apply our storage names and runtime settings to kopf's settings object.

    Changing these later would orphan the progress and diff-base annotations on every
    existing HarnessDeployment, so they live in one place.
    """
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP, v1=False)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key=DIFFBASE_KEY, v1=False
    )
    # Few, actionable Events: handler logs stay in the log stream.
    settings.posting.level = logging.WARNING
    settings.watching.inactivity_timeout = 70.0
    if os.environ.get(NAMESPACED_ENV):
        # Watching given namespaces needs no cluster-wide scan of namespaces and CRDs; a
        # namespaced install is not allowed one, and kopf would retry it for about a minute
        # before serving anything.
        settings.scanning.disabled = True


@kopf.on.startup(id="harness-startup")
def on_startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure(settings)

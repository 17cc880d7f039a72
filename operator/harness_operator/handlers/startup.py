"""Operator-wide kopf settings, fixed on day one because they are persisted on live objects."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from harness_operator import GROUP

FINALIZER = f"{GROUP}/finalizer"
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


@kopf.on.startup(id="harness-startup")
def on_startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure(settings)

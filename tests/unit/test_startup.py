"""kopf storage names are persisted on live objects, so they are pinned by a test."""

from __future__ import annotations

import kopf

from harness_operator.handlers import startup


def test_storage_names_use_our_prefix() -> None:
    settings = kopf.OperatorSettings()
    startup.configure(settings)

    assert settings.persistence.finalizer == "harness.dev/finalizer"
    progress = settings.persistence.progress_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert progress.prefix == "harness.dev"
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(diffbase, kopf.AnnotationsDiffBaseStorage)
    assert diffbase.prefix == "harness.dev"
    assert diffbase.key == "last-handled-configuration"


def test_progress_annotations_are_written_under_our_prefix() -> None:
    settings = kopf.OperatorSettings()
    startup.configure(settings)
    body = kopf.Body({"metadata": {"name": "x", "namespace": "y"}})
    patch = kopf.Patch()
    settings.persistence.progress_storage.store(
        body=body,
        patch=patch,
        key=kopf.HandlerId("reconcile"),
        record={"started": "2026-01-01T00:00:00", "retries": 1},
    )
    keys = set(patch["metadata"]["annotations"])
    assert "harness.dev/reconcile" in keys
    assert all(key.startswith("harness.dev/") for key in keys), keys

"""The Helm chart ships the same CRDs as crds/ (copied by `make crds`)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_chart_crds_match_the_generated_ones() -> None:
    generated = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    shipped = {
        p.name: p.read_text()
        for p in (ROOT / "charts" / "harness-operator" / "files" / "crds").glob("*.yaml")
    }
    assert generated, "crds/ is empty"
    assert shipped == generated, "run `make crds`"

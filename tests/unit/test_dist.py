"""`make dist` builds a wheel that installs the operator and the kubectl plugin (the package
is not on PyPI; docs/cli.md and docs/install.md install from it)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from unit.test_requirements_lock import ROOT, uv


def test_the_wheel_carries_both_console_scripts_and_the_package(tmp_path: Path) -> None:
    subprocess.run(
        [uv(), "build", "--wheel", "--quiet", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("harness_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "kubectl-harness = harness_operator.cli.plugin:main" in scripts
    assert "harness-operator = harness_operator.cli.main:main" in scripts
    assert "harness_operator/cli/plugin.py" in names
    assert not any(n.startswith(("tests/", "cluster/")) for n in names)

"""The chart's values come from one pydantic model (scripts/chartschema.py): the committed
values.schema.json and values.yaml are current, every value is documented, every object is
closed to unknown keys, and the defaults are the operator's own."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from harness_operator.config import OperatorConfig

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "harness-operator"
SCRIPT = ROOT / "scripts" / "chartschema.py"


def test_schema_and_values_are_generated_from_the_model() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_check_fails_and_names_the_file_when_it_is_stale(tmp_path: Path) -> None:
    # The script writes next to the chart it finds from its own location: run a copy of it
    # on a copy of the chart whose schema lost a property.
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "chartschema.py").write_text(SCRIPT.read_text())
    chart = tmp_path / "charts" / "harness-operator"
    chart.mkdir(parents=True)
    stale = json.loads((CHART / "values.schema.json").read_text())
    del stale["properties"]["logJson"]
    (chart / "values.schema.json").write_text(json.dumps(stale))
    (chart / "values.yaml").write_text((CHART / "values.yaml").read_text())

    proc = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "chartschema.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert proc.returncode == 1
    assert "values.schema.json is stale" in proc.stderr
    assert "make crds" in proc.stderr


def _objects(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for item in node:
            found += _objects(item)
    return found


def test_every_object_of_the_schema_forbids_unknown_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    objects = _objects(schema)
    assert len(objects) > 10
    assert [
        o.get("description") for o in objects if o.get("additionalProperties") is not False
    ] == []


def test_values_yaml_is_the_models_defaults() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) == set(schema["properties"])
    assert values["image"]["repository"] == "ghcr.io/harness-operator/harness-operator"
    assert values["replicaCount"] == 1


KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w./-]*):")


def _property(schema: dict[str, Any], node: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of `key` under `node`, following `$ref`s; None for free-form maps."""
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    properties: dict[str, Any] | None = node.get("properties")
    return properties.get(key) if properties else None


def test_every_value_is_documented_by_a_comment_above_it() -> None:
    """Every key the model defines, at any depth, has its description as a comment right
    above it in values.yaml (entries of free-form maps, such as resources.requests, are
    the user's own)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, dict[str, Any] | None]] = [(-1, schema)]
    documented, undocumented = [], []
    for index, line in enumerate(lines):
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        node = _property(schema, parent, match["key"]) if parent is not None else None
        stack.append((indent, node))
        if node is None:
            continue
        if lines[index - 1].lstrip().startswith("#"):
            documented.append(match["key"])
        else:
            undocumented.append(match["key"])
    assert undocumented == []
    assert {"tag", "digest", "automountServiceAccountToken", "releaseStuckFor"} <= set(documented)


def test_defaults_are_the_operators_own() -> None:
    """The chart sets every HARNESS_* setting explicitly; its defaults must be the ones the
    operator uses when the variable is absent."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    defaults = {f.name: f.default for f in dataclasses.fields(OperatorConfig)}
    assert values["resyncSeconds"] == defaults["resync_seconds"]
    assert values["preflight"] == {
        "ttlSeconds": defaults["preflight_ttl_seconds"],
        "concurrency": defaults["preflight_concurrency"],
        "timeoutSeconds": defaults["preflight_timeout_seconds"],
    }
    assert values["prometheus"]["address"] == ""
    assert defaults["prometheus_url"] is None

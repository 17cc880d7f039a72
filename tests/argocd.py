"""Argo CD's health verdict on an object, from the health check the chart ships.

Argo CD runs `resource.customizations.health.harness.dev_HarnessDeployment` (our
charts/harness-operator/argocd/health.lua) in gopher-lua, a Lua 5.1 interpreter, with the
object as the global `obj` and, by default, without the standard libraries: only the base
and table functions and a reduced `os` (argo-cd util/lua/lua.go). `health()` runs the script
the same way in real Lua 5.1 (lupa) and reads the returned table as Argo CD does
(`ExecuteHealthLua`): a missing message is "", an unknown status becomes Unknown. Shared by
the unit tests of the script and the GitOps integration tests.

`python tests/argocd.py` writes the `argocd-cm` snippet in docs/gitops.md from the script
(between the BEGIN/END markers); a unit test fails when the two differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lupa.lua51 import LuaRuntime

ROOT = Path(__file__).resolve().parent.parent
ARGOCD_DIR = ROOT / "charts" / "harness-operator" / "argocd"
HEALTH_LUA = ARGOCD_DIR / "health.lua"
DOC = ROOT / "docs" / "gitops.md"
CONFIG_KEY = "resource.customizations.health.harness.dev_HarnessDeployment"
BEGIN = "<!-- BEGIN argocd-cm: generated from health.lua by `python tests/argocd.py` -->"
END = "<!-- END argocd-cm -->"
STATUSES = frozenset({"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"})
"""What Argo CD accepts from a health script (gitops-engine pkg/health)."""

SANDBOX = """
-- Argo CD opens package, base, table and a safe os (time, date) only; without the
-- string library, string values have no methods either.
getmetatable("").__index = nil
string, math, io, debug, coroutine, python = nil, nil, nil, nil, nil, nil
local time, date = os.time, os.date
os = {time = time, date = date}
"""


def health(obj: dict[str, Any], script: str | None = None) -> tuple[str, str]:
    """(status, message) as Argo CD shows them for `obj` (an object as `kubectl get -o json`
    returns it)."""
    lua = LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute(SANDBOX)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text() if script is None else script)
    if result is None:
        return "", ""
    status, message = result["status"], result["message"]
    if status not in STATUSES:
        return "Unknown", "Lua returned an invalid health status"
    assert message is None or isinstance(message, str), f"message is not a string: {message!r}"
    return str(status), message or ""


def argocd_cm(script: str | None = None) -> str:
    """The doc's snippet: the `argocd-cm` entry with the script inlined, between markers."""
    body = HEALTH_LUA.read_text() if script is None else script
    inlined = "".join(f"    {line}" if line.strip() else "\n" for line in body.splitlines(True))
    return (
        f"{BEGIN}\n"
        "```yaml\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        "  namespace: argocd\n"
        "  labels:\n"
        "    app.kubernetes.io/part-of: argocd\n"
        "data:\n"
        f"  {CONFIG_KEY}: |\n"
        f"{inlined}"
        "```\n"
        f"{END}\n"
    )


def write_doc() -> None:
    """Replace the snippet in docs/gitops.md with the one generated from the script."""
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END) + 1
    DOC.write_text(text[:start] + argocd_cm() + text[end:])


if __name__ == "__main__":
    write_doc()

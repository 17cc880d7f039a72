"""Does a live object already carry everything we would apply? (pure)

We compare instead of re-applying so that a converged resync sends no write at all.
Desired is a subset of live when every field we set has the same value there; fields
the apiserver or other controllers add (defaults, status, replicas under an HPA) are
ignored. Lists must match element by element, since we own them whole.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils import parse_quantity

# Server-populated metadata that never appears in what we render.
_IGNORED_METADATA = {"resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"}


def drift(desired: Any, live: Any, path: str = "") -> list[str]:
    """Paths (dotted) where `live` does not carry `desired`; empty when in sync."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return [path or "."]
        found: list[str] = []
        for key, want in desired.items():
            if path == ".metadata" and key in _IGNORED_METADATA:
                continue
            sub = f"{path}.{key}"
            if key not in live:
                if _is_zero(want):
                    continue  # omitempty: the server drops zero values we send

                found.append(sub)
                continue
            found.extend(drift(want, live[key], sub))
        return found
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return [path]
        found = []
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            found.extend(drift(want, have, f"{path}[{index}]"))
        return found
    return [] if _same_scalar(desired, live) else [path]


def _is_zero(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return value is False
    return bool(value in (0, "", {}, []))


def _same_scalar(desired: Any, live: Any) -> bool:
    if desired == live and type(desired) is type(live):
        return True
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    # Quantities come back canonicalised ("0.5" -> "500m", 1 -> "1").
    if isinstance(desired, str | int | float) and isinstance(live, str | int | float):
        try:
            return bool(_quantity(desired) == _quantity(live))
        except (ValueError, InvalidOperation):
            return False
    return False


def _quantity(value: str | int | float) -> Decimal:
    result: Decimal = parse_quantity(value)
    return result

"""Operator-wide settings, from the environment. The Helm chart sets `HARNESS_RESYNC_SECONDS`,
`HARNESS_PROMETHEUS_URL` (value `prometheus.address`) and the `HARNESS_PREFLIGHT_*`
settings, and the `HARNESS_PASS_WORKERS` / `HARNESS_QUERY_*` pool sizes, from its values;
run by hand, the defaults below apply."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _float(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class OperatorConfig:
    resync_seconds: float = 30.0
    """Longest time between two reconciles of an object when nothing wakes it earlier."""
    debounce_seconds: float = 0.2
    """Pause after a wake-up, so that a burst of events becomes one reconcile."""
    prometheus_url: str | None = None
    """Prometheus for analysis checks that name no address of their own."""
    preflight_ttl_seconds: float = 600.0
    """How long a credential check's verdict is reused (per credential and model)."""
    preflight_concurrency: int = 4
    """Credential checks in flight at once, across all HarnessDeployments."""
    preflight_timeout_seconds: float = 10.0
    """Longest wait for a provider's answer to a credential check."""
    pass_workers: int = 8
    """Threads for reconcile passes (each pass is a few API calls; Prometheus is not
    queried on them)."""
    query_workers: int = 16
    """Threads for analysis rounds and spend readings, across all Prometheus servers."""
    query_per_prometheus: int = 4
    """Query jobs running at once against one Prometheus address: a hung one holds at
    most this many threads."""

    @classmethod
    def from_env(cls) -> OperatorConfig:
        return cls(
            resync_seconds=_float("HARNESS_RESYNC_SECONDS", cls.resync_seconds, 0.5),
            debounce_seconds=_float("HARNESS_DEBOUNCE_SECONDS", cls.debounce_seconds, 0.0),
            prometheus_url=os.environ.get("HARNESS_PROMETHEUS_URL") or None,
            preflight_ttl_seconds=_float(
                "HARNESS_PREFLIGHT_TTL_SECONDS", cls.preflight_ttl_seconds, 1.0
            ),
            preflight_concurrency=int(
                _float("HARNESS_PREFLIGHT_CONCURRENCY", cls.preflight_concurrency, 1.0)
            ),
            preflight_timeout_seconds=_float(
                "HARNESS_PREFLIGHT_TIMEOUT_SECONDS", cls.preflight_timeout_seconds, 0.5
            ),
            pass_workers=_count("HARNESS_PASS_WORKERS", cls.pass_workers),
            query_workers=_count("HARNESS_QUERY_WORKERS", cls.query_workers),
            query_per_prometheus=_count("HARNESS_QUERY_PER_PROMETHEUS", cls.query_per_prometheus),
        )


def leader_election() -> tuple[str, str] | None:
    """(namespace, name) of the leader Lease when `HARNESS_LEADER_ELECTION` is true, else
    None. The namespace is `HARNESS_LEADER_ELECTION_NAMESPACE`, else `POD_NAMESPACE` (the
    chart sets both); the name `HARNESS_LEADER_ELECTION_NAME` (default harness-operator)."""
    raw = os.environ.get("HARNESS_LEADER_ELECTION", "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return None
    if raw not in ("true", "1", "yes"):
        raise ValueError(f"HARNESS_LEADER_ELECTION must be true or false, not {raw!r}")
    namespace = os.environ.get("HARNESS_LEADER_ELECTION_NAMESPACE") or os.environ.get(
        "POD_NAMESPACE"
    )
    if not namespace:
        raise ValueError(
            "HARNESS_LEADER_ELECTION is true but neither HARNESS_LEADER_ELECTION_NAMESPACE nor"
            " POD_NAMESPACE says where the Lease lives"
        )
    return namespace, os.environ.get("HARNESS_LEADER_ELECTION_NAME") or "harness-operator"

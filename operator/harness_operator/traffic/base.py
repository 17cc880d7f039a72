"""The traffic-routing interface: what share of requests each track gets, and the one small
protocol a mesh integration implements (Istio first; Gateway API or another mesh would be a
sibling module)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness_operator.api import HarnessDeploymentSpec
from harness_operator.render.state import HarnessRef, K8sObject


@dataclass(frozen=True)
class Route:
    """Where requests go. `canary_weight` percent of the default route goes to canary and
    the rest to stable; `mirror_percent` of requests are also copied to canary (responses
    discarded); requests matching any of `canary_match` go to canary entirely (A/B)."""

    canary_weight: int = 0
    mirror_percent: int = 0
    canary_match: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0 <= self.canary_weight <= 100:
            raise ValueError(f"canary_weight must be within 0..100, not {self.canary_weight}")
        if not 0 <= self.mirror_percent <= 100:
            raise ValueError(f"mirror_percent must be within 0..100, not {self.mirror_percent}")


class Router(Protocol):
    """A mesh integration: renders its routing objects and reads the live routing back."""

    def render(self, hd: HarnessRef, spec: HarnessDeploymentSpec, route: Route) -> list[K8sObject]:
        """Routing objects for `route`, in apply order."""
        ...

    def observe(self, hd: HarnessRef, live: K8sObject | None) -> Route | None:
        """The route the live main routing object carries, or None if unreadable."""
        ...

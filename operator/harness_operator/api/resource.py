"""The HarnessDeployment resource as a whole: its API coordinates, the envelope model that
parses a full object, and what `kubectl get` shows (printer columns)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness_operator import GROUP
from harness_operator.api.spec import HarnessDeploymentSpec
from harness_operator.api.status import HarnessDeploymentStatus

VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "HarnessDeployment"
LIST_KIND: Final = "HarnessDeploymentList"
PLURAL: Final = "harnessdeployments"
SINGULAR: Final = "harnessdeployment"
SHORT_NAMES: Final = ("hd",)
CATEGORIES: Final = ("harness",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"


PRINTER_COLUMNS: Final[tuple[dict[str, Any], ...]] = (
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {
        "name": "Weight",
        "type": "integer",
        "jsonPath": ".status.canaryWeight",
        "description": "Percent of traffic on the canary",
    },
    {"name": "Stable", "type": "string", "jsonPath": ".status.stableRevision"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canaryRevision"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1},
)


class HarnessDeployment(BaseModel):
    """A full HarnessDeployment object as read from the API (or from a YAML file)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra="ignore")

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: HarnessDeploymentSpec
    status: HarnessDeploymentStatus = Field(default_factory=HarnessDeploymentStatus)

    @model_validator(mode="after")
    def _is_ours(self) -> HarnessDeployment:
        if (self.api_version, self.kind) != (API_VERSION, KIND):
            raise ValueError(f"expected apiVersion {API_VERSION} and kind {KIND}")
        return self

"""The resources as a whole: API coordinates of HarnessDeployment and HarnessAnalysisTemplate,
the envelope models that parse a full object, and what `kubectl get` shows (printer
columns)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness_operator import GROUP
from harness_operator.api.analysis import HarnessAnalysisTemplateSpec
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
        "name": "Model",
        "type": "string",
        "jsonPath": ".status.stableModel",
        "description": "Model of the stable track (provider/name)",
    },
    {
        "name": "Canary-Model",
        "type": "string",
        "jsonPath": ".status.canaryModel",
        "description": "Model of the canary track (provider/name)",
    },
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


# --- HarnessAnalysisTemplate -------------------------------------------------------------

TEMPLATE_KIND: Final = "HarnessAnalysisTemplate"
TEMPLATE_LIST_KIND: Final = "HarnessAnalysisTemplateList"
TEMPLATE_PLURAL: Final = "harnessanalysistemplates"
TEMPLATE_SINGULAR: Final = "harnessanalysistemplate"
TEMPLATE_SHORT_NAMES: Final = ("hat",)
TEMPLATE_CRD_NAME: Final = f"{TEMPLATE_PLURAL}.{GROUP}"

TEMPLATE_PRINTER_COLUMNS: Final[tuple[dict[str, Any], ...]] = (
    {
        "name": "Checks",
        "type": "string",
        "jsonPath": ".spec.checks[*].name",
        "description": "Names of the template's checks",
    },
    {"name": "Window", "type": "string", "jsonPath": ".spec.window"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


class HarnessAnalysisTemplate(BaseModel):
    """A full HarnessAnalysisTemplate object as read from the API (or from a YAML file)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra="ignore")

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = TEMPLATE_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: HarnessAnalysisTemplateSpec

    @model_validator(mode="after")
    def _is_ours(self) -> HarnessAnalysisTemplate:
        if (self.api_version, self.kind) != (API_VERSION, TEMPLATE_KIND):
            raise ValueError(f"expected apiVersion {API_VERSION} and kind {TEMPLATE_KIND}")
        return self

"""The HarnessDeployment API (`harness.dev/v1alpha1`): pydantic models that are the single
source of truth for the CRD schema (`crdgen`), the API reference (`docs`) and the operator's
parsing of objects. Models import nothing from the rest of the operator but `naming`.

Typical use from the handlers::

    spec = HarnessDeploymentSpec.model_validate(body["spec"])
    status = HarnessDeploymentStatus.model_validate(body.get("status") or {})
    patch.status.update(new_status.to_k8s())
"""

from harness_operator.api.resource import (
    API_VERSION,
    CRD_NAME,
    KIND,
    PLURAL,
    VERSION,
    HarnessDeployment,
)
from harness_operator.api.spec import (
    Autoscaling,
    EnvFromSource,
    EnvVar,
    HarnessDeploymentSpec,
    PodTemplate,
    Rollout,
    RolloutStep,
    ServiceSpec,
    Strategy,
)
from harness_operator.api.status import (
    CONDITION_CONFIG_RESOLVED,
    CONDITION_PROGRESSING,
    CONDITION_READY,
    Condition,
    ConditionStatus,
    HarnessDeploymentStatus,
    Phase,
)
from harness_operator.api.types import parse_duration

__all__ = [
    "API_VERSION",
    "CONDITION_CONFIG_RESOLVED",
    "CONDITION_PROGRESSING",
    "CONDITION_READY",
    "CRD_NAME",
    "KIND",
    "PLURAL",
    "VERSION",
    "Autoscaling",
    "Condition",
    "ConditionStatus",
    "EnvFromSource",
    "EnvVar",
    "HarnessDeployment",
    "HarnessDeploymentSpec",
    "HarnessDeploymentStatus",
    "Phase",
    "PodTemplate",
    "Rollout",
    "RolloutStep",
    "ServiceSpec",
    "Strategy",
    "parse_duration",
]

"""Pure builders: a HarnessDeployment's spec and release state in, the Kubernetes objects it
should own out, as plain dicts ready for server-side apply.

No API calls and no kopf here: the kube adapter applies what `render()` returns and deletes
what it lists as absent. Names and labels come from `harness_operator.naming`. Output is
deterministic (same input, same dicts in the same order), so re-applying is a no-op.
"""

from harness_operator.render.configs import ConfigRef, referenced_configs
from harness_operator.render.objects import render
from harness_operator.render.revision import config_hash, legacy_revision
from harness_operator.render.scaling import render_hpas, render_pdb
from harness_operator.render.service import render_services
from harness_operator.render.state import Desired, HarnessRef, K8sObject, ObjectKey, ReleaseState
from harness_operator.render.workload import pod_template, render_deployment, revision

__all__ = [
    "ConfigRef",
    "Desired",
    "HarnessRef",
    "K8sObject",
    "ObjectKey",
    "ReleaseState",
    "config_hash",
    "legacy_revision",
    "pod_template",
    "referenced_configs",
    "render",
    "render_deployment",
    "render_hpas",
    "render_pdb",
    "render_services",
    "revision",
]

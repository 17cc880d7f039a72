"""The only package that talks to the API server (client) and decides whether a write is
needed at all (diff)."""

from harness_operator.kube.client import FIELD_MANAGER, Kube, Obj, resource
from harness_operator.kube.diff import drift

__all__ = ["FIELD_MANAGER", "Kube", "Obj", "drift", "resource"]

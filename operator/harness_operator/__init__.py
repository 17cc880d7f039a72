"""harness-operator: runs AI-agent harnesses on Kubernetes with metric-gated canary releases."""

__version__ = "0.1.0"

GROUP = "harness.dev"
"""API group of our custom resources, and the prefix of every key the operator writes."""

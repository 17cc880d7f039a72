"""Entry points: the `harness-operator` console script (and, later, the kubectl plugin)."""

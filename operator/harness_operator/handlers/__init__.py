"""kopf wiring only: each module registers handlers that translate kopf's kwargs into calls
of the pure layers. Importing this package registers everything."""

from harness_operator.handlers import startup

__all__ = ["startup"]

"""kopf wiring only: each module registers handlers that translate kopf's kwargs into calls
of the controller. Importing this package registers everything."""

from harness_operator.handlers import harness, leader, startup

__all__ = ["harness", "leader", "startup"]

"""Fixtures of the harness app's tests; the helpers they share live in `apptest` (a module
of its own, so these tests also run from the repository's root suite, whose `conftest`
module would shadow this one's name)."""

from apptest import fake, setenv

__all__ = ["fake", "setenv"]

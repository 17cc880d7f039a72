"""Wake-up signals for the per-object reconcile loops, keyed by (namespace, name)."""

from __future__ import annotations

import asyncio

from harness_operator.heartbeat import Heartbeat


class Kicks:
    """An asyncio.Event per running loop. A kick for an object without a loop is dropped:
    its loop reconciles from scratch when it starts."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = {}

    def register(self, namespace: str, name: str) -> asyncio.Event:
        event = asyncio.Event()
        self._events[(namespace, name)] = event
        return event

    def unregister(self, namespace: str, name: str, event: asyncio.Event) -> None:
        if self._events.get((namespace, name)) is event:
            del self._events[(namespace, name)]

    def active(self) -> int:
        """How many loops are running."""
        return len(self._events)

    def kick(self, namespace: str, name: str) -> None:
        event = self._events.get((namespace, name))
        if event is not None:
            event.set()


KICKS = Kicks()


# When a pass or a watch event last showed that the operator is alive.
HEARTBEAT = Heartbeat()


class Leadership:
    """Whether this replica acts (reconciles). Always, unless leader election is on; then
    only while it holds the Lease (`handlers/leader.py`)."""

    def __init__(self) -> None:
        self.acting = True


LEADERSHIP = Leadership()

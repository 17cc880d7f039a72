"""Leader election on a Lease: one replica acts at a time, a killed leader is replaced once
its Lease has gone unrenewed for its duration (never before), a leader that cannot renew
stops acting before anyone else may start, and a clean stop hands over at once."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness_operator.kube.lease import Elector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=self.now)


class FakeLeases:
    """The apiserver's side of one Lease: compare-and-swap on resourceVersion."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Any:
        self._check()
        return copy.deepcopy(self.lease)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if self.lease is not None:
            raise ApiException(status=409)
        return self._store(obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._check()
        assert self.lease is not None
        if obj["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiException(status=409)
        return self._store(obj)

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = copy.deepcopy(obj)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("apiserver unreachable")

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"].get("holderIdentity")


def elector(leases: FakeLeases, clock: Clock, identity: str) -> Elector:
    return Elector(leases, "ops", "harness-operator", identity, clock=clock, wall=clock.wall)  # type: ignore[arg-type]


def run(clock: Clock, seconds: float, *electors: Elector) -> list[tuple[bool, ...]]:
    """Tick every elector every 2 s (the retry period) for `seconds`."""
    seen = []
    for _ in range(int(seconds / 2)):
        clock.now += 2
        seen.append(tuple(e.tick() for e in electors))
    return seen


def test_exactly_one_replica_leads() -> None:
    clock, leases = Clock(), FakeLeases()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    assert a.tick() is True
    assert b.tick() is False
    assert run(clock, 30, a, b) == [(True, False)] * 15
    assert leases.holder == "a"
    assert leases.lease is not None
    assert leases.lease["spec"]["leaseTransitions"] == 0


def test_a_killed_leader_is_replaced_after_the_lease_duration_and_not_before() -> None:
    clock, leases = Clock(), FakeLeases()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    run(clock, 10, a, b)
    killed_at = clock.now  # a stops ticking: SIGKILL
    took_over = None
    for _ in range(10):
        clock.now += 2
        if b.tick():
            took_over = clock.now - killed_at
            break
    assert took_over is not None
    assert 10 <= took_over <= 12, took_over  # the duration, plus at most one retry period
    assert leases.holder == "b"
    assert leases.lease is not None
    assert leases.lease["spec"]["leaseTransitions"] == 1


def test_a_leader_that_cannot_renew_stops_before_anyone_may_take_over() -> None:
    clock, leases = Clock(), FakeLeases()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    run(clock, 6, a, b)
    last_renew = clock.now
    leases.down = True  # a partition: neither can reach the apiserver
    stopped_at = None
    for _ in range(10):
        clock.now += 1
        if not a.tick() and stopped_at is None:
            stopped_at = clock.now - last_renew
        b.tick()
    assert stopped_at is not None
    assert stopped_at <= 7  # renew deadline
    leases.down = False
    # b has seen the record unchanged since before the partition: it may take over now,
    # 10 s after it last saw a renew, while a stopped acting 7 s after its last renew.
    assert b.tick() is True
    assert a.tick() is False


def test_two_candidates_racing_for_an_expired_lease_one_wins() -> None:
    clock, leases = Clock(), FakeLeases()
    a = elector(leases, clock, "a")
    a.tick()
    b, c = elector(leases, clock, "b"), elector(leases, clock, "c")
    b.tick()
    c.tick()
    clock.now += 11  # a is gone
    lease = leases.get("", "", "", "")
    real_get = leases.get
    leases.get = lambda *_: copy.deepcopy(lease)  # type: ignore[method-assign]
    results = (b.tick(), c.tick())  # both read the same version
    leases.get = real_get  # type: ignore[method-assign]
    assert sorted(results) == [False, True]


def test_a_clean_stop_hands_over_at_once() -> None:
    clock, leases = Clock(), FakeLeases()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    run(clock, 4, a, b)
    a.release()
    assert a.leading is False
    clock.now += 2
    assert b.tick() is True

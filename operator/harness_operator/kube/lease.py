"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it, so that of
several operator replicas exactly one acts at a time.

`Elector.tick()` is called every `retry` seconds by each replica. The holder renews the
Lease; a candidate takes it over only when it has seen the same holder and renew time for a
whole `duration` on its own clock (so clock skew between nodes does not matter), writing
with the resourceVersion it read, so that of two candidates only one wins. A holder that
cannot renew for `renew_deadline` (< `duration`) stops acting before anyone else may start.
`release()` on a clean shutdown hands over at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from kubernetes.client.exceptions import ApiException

from harness_operator.kube.client import Kube, Obj

log = logging.getLogger(__name__)

API_VERSION: Final = "coordination.k8s.io/v1"
DURATION_SECONDS: Final = 10.0
RENEW_DEADLINE_SECONDS: Final = 7.0
RETRY_SECONDS: Final = 2.0


def _micro_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: float = DURATION_SECONDS,
        renew_deadline: float = RENEW_DEADLINE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew_deadline = renew_deadline
        self.clock = clock
        self.wall = wall
        self.leading = False
        self._renewed_at = float("-inf")
        self._observed: tuple[str, str] | None = None
        self._observed_at = 0.0

    def tick(self) -> bool:
        """Acquire or renew the Lease once; whether this replica leads now."""
        now = self.clock()
        try:
            lease = self.kube.get(API_VERSION, "Lease", self.namespace, self.name)
            if lease is None:
                self.kube.create(self._claim(None))
                return self._won(now, "created")
            spec = lease.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            record = (holder, str(spec.get("renewTime") or ""))
            if record != self._observed:
                self._observed, self._observed_at = record, now
            duration = float(spec.get("leaseDurationSeconds") or self.duration)
            if holder and holder != self.identity and now - self._observed_at < duration:
                return self._lost(f"held by {holder}")
            self.kube.replace(self._claim(lease))
            return self._won(now, "renewed" if holder == self.identity else "taken over")
        except ApiException as err:
            if err.status == 409:  # someone else wrote it first
                return self._lost("another replica wrote the Lease first")
            return self._keep_until_deadline(now, f"HTTP {err.status}")
        except Exception as err:  # network trouble (urllib3's errors are not OSErrors)
            return self._keep_until_deadline(now, f"{type(err).__name__}: {err}")

    def release(self) -> None:
        """Give the Lease up (clean shutdown), so another replica takes over at once."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = self.kube.get(API_VERSION, "Lease", self.namespace, self.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"].update(holderIdentity=None, leaseDurationSeconds=1)
            self.kube.replace(lease)
        except Exception as err:  # shutting down anyway: the Lease will expire
            log.warning("could not release the leader Lease: %s", err)

    def _claim(self, lease: Obj | None) -> Obj:
        now = _micro_time(self.wall())
        spec = dict((lease or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (lease is not None)
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=int(self.duration),
            renewTime=now,
        )
        metadata = (lease or {}).get("metadata") or {
            "name": self.name,
            "namespace": self.namespace,
        }
        return {"apiVersion": API_VERSION, "kind": "Lease", "metadata": metadata, "spec": spec}

    def _won(self, now: float, how: str) -> bool:
        if not self.leading:
            log.info("leader Lease %s/%s %s: this replica acts", self.namespace, self.name, how)
        self.leading, self._renewed_at = True, now
        return True

    def _lost(self, why: str) -> bool:
        if self.leading:
            log.warning("leader Lease lost (%s): this replica stops acting", why)
        self.leading = False
        return False

    def _keep_until_deadline(self, now: float, why: str) -> bool:
        if self.leading and now - self._renewed_at < self.renew_deadline:
            log.warning("leader Lease not renewed (%s); still leading for now", why)
            return True
        return self._lost(why)

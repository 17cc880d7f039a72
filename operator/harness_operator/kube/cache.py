"""Reads from the watches: the latest body of every generated object, so that a reconcile pass
needs no GET for what the operator already watches.

The operator watches every kind it generates (to undo drift at once); those watch events
feed `ObjectCache.observe`, and so do the apiserver's answers to our own writes, so
the next pass sees what it just wrote even before the watch echoes it. An older version never
replaces a newer one (watch events can trail a write), and a deletion removes only the object
it names (a re-created object has a new uid). `CachedKube.get` answers a watched kind from
the cache; a miss — not seen yet, or never ours, such as a same-named object of someone
else's — falls back to a GET. Kinds that are not watched (Secrets, ConfigMaps, templates)
always GET, and so does an object that is not labelled as ours (the watches do not see it).
Someone removing our label from a generated object takes it out of the watches' sight: the
cache then holds its last labelled version until the operator restarts.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from prometheus_client import Counter

from harness_operator.kube.client import FIELD_MANAGER, Kube, Obj
from harness_operator.naming import LABEL_APP_MANAGED_BY, MANAGED_BY

LOOKUPS = Counter(
    "harness_operator_cache_lookups",
    "Reads of generated objects by reconcile passes: hit (served from the watches) or miss"
    " (a GET).",
    ["result"],
)

Key = tuple[str, str, str, str]


def _key(api_version: str, kind: str, namespace: str | None, name: str) -> Key:
    return (api_version, kind, namespace or "", name)


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return _key(obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace"), meta["name"])


def _watched(obj: Obj) -> bool:
    """Whether the watches keep this object up to date (they see only objects labelled as
    ours): anything else — a same-named object of someone else's — is read each time."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(LABEL_APP_MANAGED_BY) == MANAGED_BY)


def resource_version(obj: Obj) -> int:
    """`metadata.resourceVersion` as a number, to tell the newer of two versions of one
    object apart (0 when absent)."""
    raw = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(raw) if raw.isdigit() else 0


class ObjectCache:
    def __init__(self, kinds: set[tuple[str, str]]) -> None:
        self.kinds = kinds
        """(apiVersion, kind) pairs the operator watches."""
        self._lock = threading.Lock()
        self._objects: dict[Key, Obj] = {}

    def observe(self, obj: Obj, deleted: bool = False) -> None:
        """A watch event (or our own write's answer): keep the newest version."""
        key = key_of(obj)
        with self._lock:
            held = self._objects.get(key)
            if deleted:
                uid = (obj.get("metadata") or {}).get("uid")
                if held is not None and held["metadata"].get("uid") == uid:
                    del self._objects[key]
                return
            if held is None or resource_version(obj) >= resource_version(held):
                self._objects[key] = copy.deepcopy(obj)

    def forget(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        with self._lock:
            self._objects.pop(_key(api_version, kind, namespace, name), None)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        with self._lock:
            held = self._objects.get(_key(api_version, kind, namespace, name))
            return copy.deepcopy(held) if held is not None else None

    def watches(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.kinds


class CachedKube(Kube):
    """`Kube` whose `get` of a watched kind is served from `cache` when it can be."""

    def __init__(self, cache: ObjectCache, api: Any = None) -> None:
        super().__init__(api)
        self.cache = cache

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        if not self.cache.watches(api_version, kind):
            return super().get(api_version, kind, namespace, name)
        held = self.cache.get(api_version, kind, namespace, name)
        LOOKUPS.labels("miss" if held is None else "hit").inc()
        if held is not None:
            return held
        found = super().get(api_version, kind, namespace, name)
        if found is not None and _watched(found):
            self._keep(api_version, kind, found)
        return found

    def ours_if_any(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> Obj | None:
        """For a watched kind, trusts the watches' absence: every object of ours carries the
        label they select on. (Before they have listed everything, an object to delete may
        be missed; its listing event wakes the owner, whose next pass deletes it.)"""
        if self.cache.watches(api_version, kind):
            return self.cache.get(api_version, kind, namespace, name)
        return super().ours_if_any(api_version, kind, namespace, name)

    def apply(self, obj: Obj, manager: str = FIELD_MANAGER, *, dry_run: bool = False) -> Obj:
        stored = super().apply(obj, manager, dry_run=dry_run)
        if not dry_run and self.cache.watches(obj["apiVersion"], obj["kind"]):
            self._keep(obj["apiVersion"], obj["kind"], stored)
        return stored

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        gone = super().delete(api_version, kind, namespace, name)
        self.cache.forget(api_version, kind, namespace, name)
        return gone

    def _keep(self, api_version: str, kind: str, answer: Obj) -> None:
        # The apiserver's answers to a single-object request may lack apiVersion and kind.
        self.cache.observe({"apiVersion": api_version, "kind": kind, **answer})

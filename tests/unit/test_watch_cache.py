"""Reads from the watches: a pass reads generated objects from what the watches delivered,
never an older version than it already saw (watch events trail our own writes), and falls
back to a GET only for what it has not seen."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from harness_operator.kube.cache import CachedKube, ObjectCache

DEPLOYMENT = ("apps/v1", "Deployment")


def deployment(version: int, uid: str = "u1", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "agent-stable",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": str(version),
            "labels": {"app.kubernetes.io/managed-by": "harness-operator"},
        },
        "spec": {"replicas": replicas},
    }


class Server:
    """The API server's side: answers GETs and applies, counting them."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    def __call__(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((method, path))
        if method == "GET":
            if path not in self.objects:
                raise ApiException(status=404)
            return self.objects[path]
        if method == "PATCH":
            return deployment(20, replicas=5)
        return {}


PATH = "/apis/apps/v1/namespaces/ns/deployments/agent-stable"


def kube_with(cache: ObjectCache) -> tuple[CachedKube, Server]:
    kube = CachedKube(cache, api=object())
    server = Server()
    kube._request = server  # type: ignore[method-assign]
    return kube, server


def test_a_watched_object_is_read_without_a_get() -> None:
    cache = ObjectCache({DEPLOYMENT})
    cache.observe(deployment(10))
    kube, server = kube_with(cache)
    assert kube.get("apps/v1", "Deployment", "ns", "agent-stable") == deployment(10)
    assert server.calls == []


def test_a_miss_gets_once_and_remembers() -> None:
    kube, server = kube_with(ObjectCache({DEPLOYMENT}))
    server.objects[PATH] = deployment(10)
    assert kube.get("apps/v1", "Deployment", "ns", "agent-stable") == deployment(10)
    assert kube.get("apps/v1", "Deployment", "ns", "agent-stable") == deployment(10)
    assert server.calls == [("GET", PATH)]


def test_an_object_that_does_not_exist_is_asked_for_each_time() -> None:
    kube, server = kube_with(ObjectCache({DEPLOYMENT}))
    assert kube.get("apps/v1", "Deployment", "ns", "agent-stable") is None
    assert kube.get("apps/v1", "Deployment", "ns", "agent-stable") is None
    assert len(server.calls) == 2  # a miss is never trusted as "absent"


def test_unwatched_kinds_always_get() -> None:
    kube, server = kube_with(ObjectCache({DEPLOYMENT}))
    server.objects["/api/v1/namespaces/ns/secrets/key"] = {"data": {}}
    kube.get("v1", "Secret", "ns", "key")
    kube.get("v1", "Secret", "ns", "key")
    assert len(server.calls) == 2


def test_our_write_is_seen_and_a_trailing_watch_event_does_not_undo_it() -> None:
    cache = ObjectCache({DEPLOYMENT})
    cache.observe(deployment(10))
    kube, _ = kube_with(cache)
    kube.apply(deployment(10, replicas=5))  # the server answers version 20
    cache.observe(deployment(15, replicas=3))  # an older watch event, delivered late
    held = kube.get("apps/v1", "Deployment", "ns", "agent-stable")
    assert held is not None
    assert held["spec"]["replicas"] == 5


def test_a_dry_run_changes_nothing_in_the_cache() -> None:
    cache = ObjectCache({DEPLOYMENT})
    cache.observe(deployment(10))
    kube, _ = kube_with(cache)
    kube.apply(deployment(10, replicas=5), dry_run=True)
    assert cache.get("apps/v1", "Deployment", "ns", "agent-stable") == deployment(10)


def test_a_deletion_removes_only_the_object_it_names() -> None:
    cache = ObjectCache({DEPLOYMENT})
    cache.observe(deployment(10, uid="old"))
    cache.observe(deployment(30, uid="new"))  # deleted and created again
    cache.observe(deployment(31, uid="old"), deleted=True)  # the old one's DELETED, late
    held = cache.get("apps/v1", "Deployment", "ns", "agent-stable")
    assert held is not None
    assert held["metadata"]["uid"] == "new"
    cache.observe(deployment(32, uid="new"), deleted=True)
    assert cache.get("apps/v1", "Deployment", "ns", "agent-stable") is None


def test_what_a_caller_changes_does_not_change_the_cache() -> None:
    cache = ObjectCache({DEPLOYMENT})
    cache.observe(deployment(10))
    held = cache.get("apps/v1", "Deployment", "ns", "agent-stable")
    assert held is not None
    held["spec"]["replicas"] = 99
    assert cache.get("apps/v1", "Deployment", "ns", "agent-stable") == deployment(10)


def test_someone_elses_object_is_read_each_time() -> None:
    kube, server = kube_with(ObjectCache({DEPLOYMENT}))
    theirs = deployment(10)
    theirs["metadata"]["labels"] = {"app": "theirs"}
    server.objects[PATH] = theirs
    kube.get("apps/v1", "Deployment", "ns", "agent-stable")
    del server.objects[PATH]  # they delete it: no watch event reaches us
    assert kube.get("apps/v1", "Deployment", "ns", "agent-stable") is None


def test_absence_is_trusted_only_when_looking_for_our_own_objects_to_delete() -> None:
    kube, server = kube_with(ObjectCache({DEPLOYMENT}))
    assert kube.ours_if_any("apps/v1", "Deployment", "ns", "agent-canary") is None
    assert server.calls == []
    kube.ours_if_any("v1", "Secret", "ns", "key")  # not watched: asked
    assert len(server.calls) == 1

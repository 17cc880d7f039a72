"""`render()`: the full set of objects, ownership, labels, order and determinism."""

from __future__ import annotations

import copy

from harness_operator.render import HarnessRef, ObjectKey, ReleaseState, render
from unit.render_helpers import HD, find, in_release, quickstart, spec

AT_REST_KINDS = [
    ("Deployment", "pr-reviewer-stable"),
    ("Deployment", "pr-reviewer-canary"),
    ("Service", "pr-reviewer"),
    ("Service", "pr-reviewer-stable"),
    ("Service", "pr-reviewer-canary"),
    ("HorizontalPodAutoscaler", "pr-reviewer-stable"),
    ("PodDisruptionBudget", "pr-reviewer-stable"),
    ("DestinationRule", "pr-reviewer-stable"),
    ("DestinationRule", "pr-reviewer-canary"),
    ("VirtualService", "pr-reviewer"),
]


KEDA = ObjectKey("keda.sh/v1alpha1", "ScaledObject", "agents", "pr-reviewer-stable")


def test_objects_at_rest_in_apply_order() -> None:
    s = quickstart()
    desired = render(HD, s, ReleaseState.at_rest(s))
    assert [(o["kind"], o["metadata"]["name"]) for o in desired.objects] == AT_REST_KINDS
    assert desired.absent == [
        ObjectKey("autoscaling/v2", "HorizontalPodAutoscaler", "agents", "pr-reviewer-canary"),
        KEDA,
    ]
    stable = ObjectKey("apps/v1", "Deployment", "agents", "pr-reviewer-stable")
    assert stable in desired.object_keys()


def test_at_rest_the_canary_is_idle() -> None:
    s = quickstart()
    objects = render(HD, s, ReleaseState.at_rest(s)).objects
    assert find(objects, "Deployment", "pr-reviewer-canary")["spec"]["replicas"] == 0
    stable_route, canary_route = find(objects, "VirtualService", "pr-reviewer")["spec"]["http"][0][
        "route"
    ]
    assert (stable_route["weight"], canary_route["weight"]) == (100, 0)


def test_during_a_release() -> None:
    stable, canary = quickstart(), quickstart(image="ghcr.io/acme/pr-reviewer:1.5.0")
    desired = render(HD, canary, in_release(stable, canary, weight=30))
    kinds = [(o["kind"], o["metadata"]["name"]) for o in desired.objects]
    assert ("HorizontalPodAutoscaler", "pr-reviewer-canary") in kinds
    assert desired.absent == [KEDA]
    weights = [
        r["weight"]
        for r in find(desired.objects, "VirtualService", "pr-reviewer")["spec"]["http"][0]["route"]
    ]
    assert weights == [70, 30]
    assert sum(weights) == 100


def test_without_autoscaling_both_hpas_are_absent() -> None:
    s = spec()
    desired = render(HD, s, ReleaseState.at_rest(s))
    assert not [o for o in desired.objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert [k.name for k in desired.absent] == [
        "pr-reviewer-stable",
        "pr-reviewer-canary",
        "pr-reviewer-stable",  # no KEDA ScaledObject either
    ]
    assert desired.absent[-1] == KEDA


def test_every_object_is_owned_labelled_and_namespaced() -> None:
    s = quickstart()
    for obj in render(HD, s, in_release(s, s)).objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "agents"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "harness.dev/v1alpha1",
                "kind": "HarnessDeployment",
                "name": "pr-reviewer",
                "uid": "0f4c-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert meta["labels"]["harness.dev/name"] == "pr-reviewer"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "harness-operator"
        if meta["name"].endswith(("-stable", "-canary")):
            assert meta["labels"]["harness.dev/track"] == meta["name"].rsplit("-", 1)[1]
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}


def test_render_is_deterministic_and_pure() -> None:
    s = quickstart(env=[{"name": "A", "value": "1"}], podTemplate={"tolerations": [{"key": "a"}]})
    state = ReleaseState.at_rest(s, {"Secret/x": "1"})
    before = s.model_copy(deep=True)
    first = render(HD, s, state)
    second = render(HD, s, state)
    assert first == second
    assert s == before
    # Mutating the output does not leak into later renders.
    mutated = copy.deepcopy(first.objects)
    pod = first.objects[0]["spec"]["template"]["spec"]
    pod["containers"][0]["env"].append({"name": "B"})
    pod["tolerations"][0]["key"] = "changed"
    assert render(HD, s, state).objects == mutated


def test_harness_ref_from_body() -> None:
    body = {
        "metadata": {
            "name": "pr-reviewer",
            "namespace": "agents",
            "uid": "0f4c-uid",
            "generation": 4,
        }
    }
    assert HarnessRef.from_body(body) == HD

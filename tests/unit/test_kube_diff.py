"""The write-avoidance rule: apply only when the live object lacks what we render."""

from __future__ import annotations

from harness_operator.kube import drift


def test_in_sync_when_live_has_extra_server_fields() -> None:
    desired = {"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"port": 80}}
    live = {
        "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}, "uid": "u", "generation": 3},
        "spec": {"port": 80, "clusterIP": "10.0.0.1"},
        "status": {},
    }
    assert drift(desired, live) == []


def test_changed_value_is_drift_with_its_path() -> None:
    desired = {"spec": {"template": {"spec": {"containers": [{"image": "a:2"}]}}}}
    live = {"spec": {"template": {"spec": {"containers": [{"image": "a:1", "tty": False}]}}}}
    assert drift(desired, live) == [".spec.template.spec.containers[0].image"]


def test_missing_field_and_list_length_are_drift() -> None:
    assert drift({"spec": {"a": 1}}, {"spec": {}}) == [".spec.a"]
    assert drift({"l": [1, 2]}, {"l": [1]}) == [".l"]


def test_quantities_compare_by_value() -> None:
    desired = {"cpu": "0.5", "memory": "1024Mi", "n": 1}
    live = {"cpu": "500m", "memory": "1Gi", "n": "1"}
    assert drift(desired, live) == []
    assert drift({"cpu": "250m"}, {"cpu": "500m"}) == [".cpu"]


def test_zero_desired_values_match_absent_fields() -> None:
    # The apiserver omits zero values (Go omitempty), so they never come back.
    desired = {"spec": {"args": [], "env": None, "initialDelaySeconds": 0, "x": False, "s": ""}}
    assert drift(desired, {"spec": {}}) == []
    assert drift({"spec": {"replicas": 0}}, {"spec": {"replicas": 1}}) == [".spec.replicas"]
    assert drift({"spec": {"on": True}}, {"spec": {}}) == [".spec.on"]


def test_booleans_are_not_numbers() -> None:
    assert drift({"a": True}, {"a": 1}) == [".a"]
    assert drift({"a": "true"}, {"a": True}) == [".a"]

"""Names and labels of generated objects."""

from __future__ import annotations

import pytest

from harness_operator import naming
from harness_operator.naming import Track


def test_object_names() -> None:
    assert naming.apex_name("pr-reviewer") == "pr-reviewer"
    assert naming.stable_name("pr-reviewer") == "pr-reviewer-stable"
    assert naming.canary_name("pr-reviewer") == "pr-reviewer-canary"
    assert naming.track_name("x", Track.CANARY) == "x-canary"
    assert naming.service_host("x-stable", "ns") == "x-stable.ns.svc.cluster.local"


def test_labels() -> None:
    assert naming.selector_labels("x", Track.STABLE) == {
        "harness.dev/name": "x",
        "harness.dev/track": "stable",
    }
    assert naming.common_labels("x") == {
        "app.kubernetes.io/name": "x",
        "app.kubernetes.io/instance": "x",
        "app.kubernetes.io/managed-by": "harness-operator",
        "harness.dev/name": "x",
    }
    pod = naming.pod_labels("x", Track.CANARY, "abc123")
    assert pod["harness.dev/revision"] == "abc123"
    assert pod["harness.dev/track"] == "canary"
    assert naming.selector_labels("x", Track.CANARY).items() <= pod.items()


def test_longest_name_fits_a_service_name() -> None:
    assert naming.MAX_NAME_LENGTH == 56
    longest = "a" * 56
    assert naming.name_problems(longest) == []
    assert len(naming.canary_name(longest)) == 63


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a" * 57, "at most 56 fit"),
        ("1agent", "DNS-1035 label"),
        ("Agent", "DNS-1035 label"),
        ("agent-", "DNS-1035 label"),
        ("agent.v2", "DNS-1035 label"),
        ("", "DNS-1035 label"),
    ],
)
def test_name_problems(name: str, problem: str) -> None:
    assert any(problem in p for p in naming.name_problems(name))

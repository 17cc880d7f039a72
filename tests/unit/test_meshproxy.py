"""The mesh stand-in's split: each track gets its share of requests exactly (within one),
and a track without ready endpoints gives its share to the other."""

from __future__ import annotations

from collections import Counter

import pytest

from meshproxy import Splitter


@pytest.mark.parametrize("weight", [0, 10, 25, 50, 100])
def test_the_split_follows_the_weight_within_one_request(weight: int) -> None:
    splitter = Splitter()
    seen: Counter[str | None] = Counter()
    for n in range(1, 401):
        seen[splitter.pick(weight, {"stable", "canary"})] += 1
        assert abs(seen["canary"] - n * weight / 100) <= 1
    assert seen["canary"] == 4 * weight


def test_a_track_without_endpoints_gives_its_share_away() -> None:
    splitter = Splitter()
    picks = [splitter.pick(50, {"stable"}) for _ in range(10)]
    assert picks == ["stable"] * 10
    # Once the canary is back, it does not get a burst for the share it missed.
    back = [splitter.pick(50, {"stable", "canary"}) for _ in range(10)]
    assert back.count("canary") == 5


def test_no_endpoints_at_all() -> None:
    assert Splitter().pick(50, set()) is None

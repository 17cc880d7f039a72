"""TrafficSim, driven tick by tick on its own clock against a fake Kube: the request split
follows the VirtualService, and what the exported series say matches the track settings."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness_operator.sim import TrafficSim
from harness_operator.sim.traffic import TrackBehaviour

NS, NAME = "agents", "pr-reviewer"
STABLE = f"{NAME}-stable.{NS}.svc.cluster.local"
CANARY = f"{NAME}-canary.{NS}.svc.cluster.local"
Labels = frozenset[tuple[str, str]]


class FakeKube:
    """Canned objects by (kind, name); counts reads; can be made to fail."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.reads: list[tuple[str, str]] = []
        self.fail = False

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        assert namespace == NS
        self.reads.append((kind, name))
        if self.fail:
            raise ConnectionError("apiserver unreachable")
        obj = self.objects.get((kind, name))
        return copy.deepcopy(obj)

    def route(
        self,
        canary_weight: int,
        *,
        mirror_percent: float | None = None,
        match: bool = False,
    ) -> None:
        primary: dict[str, Any] = {
            "name": "primary",
            "route": [
                {"destination": {"host": STABLE}, "weight": 100 - canary_weight},
                {"destination": {"host": CANARY}, "weight": canary_weight},
            ],
        }
        if mirror_percent is not None:
            primary["mirror"] = {"host": CANARY}
            primary["mirrorPercentage"] = {"value": mirror_percent}
        http = [primary]
        if match:
            http.insert(
                0,
                {
                    "name": "canary-match",
                    "match": [{"headers": {"x-canary": {"exact": "1"}}}],
                    "route": [{"destination": {"host": CANARY}, "weight": 100}],
                },
            )
        self.objects[("VirtualService", NAME)] = {"spec": {"hosts": [NAME], "http": http}}

    def revisions(self, stable: str, canary: str | None) -> None:
        for track, revision in (("stable", stable), ("canary", canary)):
            key = ("Deployment", f"{NAME}-{track}")
            if revision is None:
                self.objects.pop(key, None)
                continue
            labels = {"harness.dev/track": track, "harness.dev/revision": revision}
            self.objects[key] = {"spec": {"template": {"metadata": {"labels": labels}}}}


@pytest.fixture
def kube() -> FakeKube:
    fake = FakeKube()
    fake.route(0)
    fake.revisions("aaaa111111", "bbbb222222")
    return fake


def new_sim(kube: FakeKube, rps: float = 20.0, **kwargs: Any) -> TrafficSim:
    return TrafficSim(kube, NS, NAME, rps=rps, seed=7, **kwargs)


def run(sim: TrafficSim, seconds: float, tick: float = 0.25) -> None:
    for _ in range(round(seconds / tick)):
        sim.step(tick)


# --- reading the exported series ------------------------------------------------------------


class Scrape:
    """One scrape of the simulation's registry."""

    def __init__(self, sim: TrafficSim) -> None:
        text = generate_latest(sim.registry).decode()
        self.samples: dict[tuple[str, Labels], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def series(self, name: str, **labels: str) -> Iterator[tuple[Labels, float]]:
        want = set(labels.items())
        for (sample_name, sample_labels), value in self.samples.items():
            if sample_name == name and want <= sample_labels:
                yield sample_labels, value

    def sum(self, name: str, **labels: str) -> float:
        return sum(value for _, value in self.series(name, **labels))

    def quantile(self, q: float, name: str, **labels: str) -> float:
        """Prometheus' histogram_quantile over the (summed) buckets of `name`."""
        buckets: dict[float, float] = {}
        for sample_labels, value in self.series(f"{name}_bucket", **labels):
            le = float(dict(sample_labels)["le"])
            buckets[le] = buckets.get(le, 0.0) + value
        bounds = sorted(buckets)
        total = buckets[math.inf]
        if total == 0:
            return math.nan
        rank = q * total
        lower, below = 0.0, 0.0
        for bound in bounds:
            if buckets[bound] >= rank:
                return lower + (bound - lower) * (rank - below) / (buckets[bound] - below)
            lower, below = bound, buckets[bound]
        raise AssertionError("unreachable")

    def tracks(self) -> set[str]:
        return {
            dict(labels)["track"]
            for (name, labels) in self.samples
            if name == "harness_requests_total"
        }


def ratio(numerator: float, denominator: float) -> float:
    """PromQL division: 0/0 is NaN."""
    return numerator / denominator if denominator else math.nan


# --- the split ----------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [0, 1, 5, 25, 50, 100])
def test_requests_follow_the_weights_exactly(kube: FakeKube, weight: int) -> None:
    kube.route(weight)
    sim = new_sim(kube)
    run(sim, 1000)  # 20 000 requests
    counts = sim.counts()
    assert counts["stable"] + counts["canary"] == pytest.approx(20_000, abs=1)
    assert counts["canary"] == pytest.approx(200 * weight, abs=1)


def test_a_track_without_weight_gets_no_requests_and_exports_nothing(kube: FakeKube) -> None:
    sim = new_sim(kube)
    run(sim, 60)
    assert sim.counts() == {"stable": 1200, "canary": 0}
    assert Scrape(sim).tracks() == {"stable"}


def test_a_weight_change_takes_effect_within_the_refresh_period(kube: FakeKube) -> None:
    sim = new_sim(kube)
    run(sim, 10)
    kube.route(50)
    run(sim, 0.5)  # the VirtualService is re-read at most every 0.5 s
    before = sim.counts()
    run(sim, 100)
    after = sim.counts()
    assert after["canary"] - before["canary"] == pytest.approx(1000, abs=1)
    assert after["stable"] - before["stable"] == pytest.approx(1000, abs=1)


def test_the_virtual_service_is_read_at_most_every_half_second(kube: FakeKube) -> None:
    sim = new_sim(kube)
    run(sim, 2.0)
    vs_reads = [r for r in kube.reads if r[0] == "VirtualService"]
    assert len(vs_reads) == 4
    deployment_reads = [r for r in kube.reads if r[0] == "Deployment"]
    assert len(deployment_reads) == 2  # both tracks once; every 3 s


def test_a_failing_apiserver_keeps_the_last_routing(kube: FakeKube) -> None:
    kube.route(20)
    sim = new_sim(kube)
    run(sim, 1)
    kube.fail = True
    run(sim, 100)
    assert sim.counts()["canary"] == pytest.approx(0.2 * 20 * 101, abs=1)


def test_no_virtual_service_no_traffic(kube: FakeKube) -> None:
    del kube.objects[("VirtualService", NAME)]
    sim = new_sim(kube)
    run(sim, 10)
    assert sim.counts() == {"stable": 0, "canary": 0}


def test_step_uses_any_duration(kube: FakeKube) -> None:
    kube.route(10)
    sim = new_sim(kube, rps=3)
    for dt in (0.1, 0.7, 2.0, 0.05, 7.15):
        sim.step(dt)
    assert sim.clock == pytest.approx(10.0)
    assert sum(sim.counts().values()) == 30


def test_rps_can_change(kube: FakeKube) -> None:
    sim = new_sim(kube)
    run(sim, 10)
    sim.set_rps(100)
    run(sim, 10)
    assert sim.counts()["stable"] == 1200


# --- mirror and A/B -----------------------------------------------------------------------


def test_mirrored_copies_reach_the_canary(kube: FakeKube) -> None:
    kube.route(0, mirror_percent=50)
    sim = new_sim(kube)
    run(sim, 100)
    assert sim.counts() == {"stable": 2000, "canary": 1000}
    assert sim.mirrored_counts() == {"stable": 0, "canary": 1000}
    assert Scrape(sim).sum("harness_requests_total", track="canary") == 1000


def test_mirror_on_top_of_a_weight(kube: FakeKube) -> None:
    kube.route(10, mirror_percent=100)
    sim = new_sim(kube)
    run(sim, 100)
    assert sim.counts() == {"stable": 1800, "canary": 200 + 2000}


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_ab_header_requests_go_to_the_canary(kube: FakeKube, share: float) -> None:
    kube.route(0, match=True)
    sim = new_sim(kube, ab_share=share)
    assert sim.ab_share == share
    run(sim, 100)
    assert sim.counts()["canary"] == pytest.approx(2000 * share, abs=1)
    assert sim.counts()["stable"] == pytest.approx(2000 * (1 - share), abs=1)


def test_ab_share_only_matters_with_a_match_route(kube: FakeKube) -> None:
    kube.route(5)
    sim = new_sim(kube, ab_share=0.5)
    run(sim, 100)
    assert sim.counts()["canary"] == 100


# --- what the series say ------------------------------------------------------------------


def test_exported_rates_match_the_track_settings(kube: FakeKube) -> None:
    kube.route(50)
    sim = new_sim(kube)
    sim.set_track(
        "canary", error_rate=0.1, latency_p95=1.5, cost_per_request=0.01, tokens_per_request=2000
    )
    run(sim, 2000, tick=1.0)  # 20 000 requests per track
    scrape = Scrape(sim)
    for track, error_rate, p95, cost, tokens in (
        ("stable", 0.0, 0.2, 0.002, 800),
        ("canary", 0.1, 1.5, 0.01, 2000),
    ):
        requests = scrape.sum("harness_requests_total", track=track)
        assert requests == 20_000
        errors = scrape.sum("harness_requests_total", track=track, outcome="error")
        assert errors / requests == pytest.approx(error_rate, abs=0.01)
        assert scrape.quantile(0.95, "harness_request_duration_seconds", track=track) == (
            pytest.approx(p95, rel=0.06)
        )
        assert scrape.sum("harness_request_duration_seconds_count", track=track) == requests
        assert scrape.sum("harness_cost_usd_total", track=track) / requests == pytest.approx(cost)
        output = scrape.sum("harness_tokens_total", track=track, type="output")
        total_tokens = scrape.sum("harness_tokens_total", track=track)
        assert total_tokens / requests == pytest.approx(tokens)
        assert output / requests == pytest.approx(tokens * 0.25)
        # Istio's view of the same requests.
        workload = {"destination_workload": f"{NAME}-{track}", "reporter": "destination"}
        istio_total = scrape.sum("istio_requests_total", **workload)
        assert istio_total == requests
        istio_errors = scrape.sum("istio_requests_total", response_code="500", **workload)
        assert istio_errors == errors
        istio_p95 = scrape.quantile(0.95, "istio_request_duration_milliseconds", **workload)
        assert istio_p95 == pytest.approx(p95 * 1000, rel=0.06)


@pytest.mark.parametrize("p95", [0.05, 0.3, 2.0, 12.0, 30.0])
def test_p95_is_accurate_over_the_whole_range(kube: FakeKube, p95: float) -> None:
    sim = new_sim(kube)
    sim.set_track("stable", latency_p95=p95)
    run(sim, 1000, tick=1.0)
    quantile = Scrape(sim).quantile(0.95, "harness_request_duration_seconds", track="stable")
    assert quantile == pytest.approx(p95, rel=0.08)


def test_series_carry_the_labels_and_revision(kube: FakeKube) -> None:
    kube.route(50)
    sim = new_sim(kube)
    run(sim, 1)
    scrape = Scrape(sim)
    labels = {dict(lbl)["track"]: dict(lbl) for lbl, _ in scrape.series("harness_cost_usd_total")}
    assert labels["stable"] == {
        "namespace": NS,
        "harness": NAME,
        "track": "stable",
        "revision": "aaaa111111",
    }
    assert labels["canary"]["revision"] == "bbbb222222"
    istio = {dict(lbl)["destination_workload"] for lbl, _ in scrape.series("istio_requests_total")}
    assert istio == {f"{NAME}-stable", f"{NAME}-canary"}
    namespaces = {
        dict(lbl)["destination_workload_namespace"]
        for lbl, _ in scrape.series("istio_requests_total")
    }
    assert namespaces == {NS}


def test_every_label_combination_exists_from_the_first_request(kube: FakeKube) -> None:
    sim = new_sim(kube)
    run(sim, 1)
    scrape = Scrape(sim)
    errors = dict(scrape.series("harness_requests_total", track="stable", outcome="error"))
    assert list(errors.values()) == [0.0]
    assert len(list(scrape.series("istio_requests_total", response_code="500"))) == 1


def test_a_new_revision_starts_new_series(kube: FakeKube) -> None:
    kube.route(50)
    sim = new_sim(kube)
    run(sim, 10)
    kube.revisions("aaaa111111", "cccc333333")
    run(sim, 3)  # Deployments are re-read every 3 s
    revisions = {dict(lbl)["revision"] for lbl, _ in Scrape(sim).series("harness_requests_total")}
    assert revisions == {"aaaa111111", "cccc333333"}
    assert sim.revision("canary") == "cccc333333"
    assert Scrape(sim).sum("harness_requests_total", track="canary") < 40


def test_a_missing_deployment_gives_revision_unknown(kube: FakeKube) -> None:
    kube.route(100)
    kube.revisions("aaaa111111", None)
    sim = new_sim(kube)
    run(sim, 1)
    assert sim.revision("canary") == "unknown"
    assert {dict(lbl)["revision"] for lbl, _ in Scrape(sim).series("harness_cost_usd_total")} == {
        "unknown"
    }


# --- silent and NaN -----------------------------------------------------------------------


def test_a_silent_track_exports_nothing_but_is_still_routed(kube: FakeKube) -> None:
    kube.route(50)
    sim = new_sim(kube)
    run(sim, 10)
    sim.set_silent("canary")
    run(sim, 10)
    scrape = Scrape(sim)
    assert scrape.tracks() == {"stable"}
    assert not list(scrape.series("istio_requests_total", destination_workload=f"{NAME}-canary"))
    assert sim.counts() == {"stable": 200, "canary": 200}
    sim.set_silent("canary", False)
    run(sim, 10)
    # It reports again, without the requests it did not report while silent.
    assert Scrape(sim).sum("harness_requests_total", track="canary") == 200


def test_nan_freezes_the_counters_so_ratios_are_zero_over_zero(kube: FakeKube) -> None:
    kube.route(50)
    sim = new_sim(kube)
    sim.set_track("canary", error_rate=0.5)
    run(sim, 10)
    sim.set_nan("canary")
    before = Scrape(sim)
    run(sim, 60)
    after = Scrape(sim)
    assert "canary" in after.tracks()

    def delta(name: str, **labels: str) -> float:
        return after.sum(name, track="canary", **labels) - before.sum(
            name, track="canary", **labels
        )

    # What the built-in queries compute over a window of frozen samples:
    error_rate = ratio(
        delta("harness_requests_total", outcome="error"), delta("harness_requests_total")
    )
    cost_per_request = ratio(delta("harness_cost_usd_total"), delta("harness_requests_total"))
    assert math.isnan(error_rate)
    assert math.isnan(cost_per_request)
    frozen = {key: value for key, value in after.samples.items() if ("track", "canary") in key[1]}
    assert frozen == {k: v for k, v in before.samples.items() if ("track", "canary") in k[1]}
    assert sim.counts()["canary"] == 700  # the mesh still routes requests to it
    # The stable track is unaffected.
    assert after.sum("harness_requests_total", track="stable") == 700
    sim.set_nan("canary", False)
    run(sim, 1)
    assert Scrape(sim).sum("harness_requests_total", track="canary") == 110


def test_nan_on_a_track_that_never_served_exports_zeros(kube: FakeKube) -> None:
    sim = new_sim(kube)
    sim.set_nan("canary")
    run(sim, 10)
    scrape = Scrape(sim)
    assert scrape.tracks() == {"stable", "canary"}
    canary = dict(scrape.series("harness_requests_total", track="canary"))
    assert sorted(dict(lbl)["outcome"] for lbl in canary) == ["error", "success"]
    assert set(canary.values()) == {0.0}
    assert {dict(lbl)["revision"] for lbl in canary} == {"bbbb222222"}
    buckets = scrape.series("harness_request_duration_seconds_bucket", track="canary")
    assert {value for _, value in buckets} == {0.0}
    assert math.isnan(scrape.quantile(0.95, "harness_request_duration_seconds", track="canary"))


# --- settings -----------------------------------------------------------------------------


def test_set_track_changes_only_what_it_names(kube: FakeKube) -> None:
    sim = new_sim(kube)
    sim.set_track("canary", latency_p95=3.0)
    behaviour = sim.set_track("canary", error_rate=0.2)
    assert behaviour == TrackBehaviour(error_rate=0.2, latency_p95=3.0)
    assert sim.behaviour("canary") == behaviour
    assert sim.behaviour("stable") == TrackBehaviour()


@pytest.mark.parametrize(
    "fields",
    [
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"latency_p95": 0},
        {"cost_per_request": -1},
        {"tokens_per_request": -1},
        {"output_token_share": 2},
    ],
)
def test_invalid_settings_are_refused(kube: FakeKube, fields: dict[str, float]) -> None:
    sim = new_sim(kube)
    with pytest.raises(ValueError, match=next(iter(fields))):
        sim.set_track("canary", **fields)
    assert sim.behaviour("canary") == TrackBehaviour()


def test_unknown_tracks_and_bad_numbers_are_refused(kube: FakeKube) -> None:
    sim = new_sim(kube)
    with pytest.raises(ValueError, match="track must be"):
        sim.set_track("primary", error_rate=0.1)
    with pytest.raises(ValueError, match="track must be"):
        sim.set_silent("blue")
    with pytest.raises(ValueError, match="rps"):
        sim.set_rps(-1)
    with pytest.raises(ValueError, match="ab_share"):
        sim.set_ab_share(1.5)
    with pytest.raises(ValueError, match="dt"):
        sim.step(math.nan)


def test_outcomes_are_reproducible_with_a_seed(kube: FakeKube) -> None:
    def scrape_once() -> dict[tuple[str, Labels], float]:
        sim = new_sim(kube)
        sim.set_track("stable", error_rate=0.3)
        run(sim, 20)
        return Scrape(sim).samples

    assert scrape_once() == scrape_once()


def test_read_errors_are_logged_when_they_start_and_end(
    kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    sim = new_sim(kube)
    run(sim, 1)
    kube.fail = True
    with caplog.at_level("INFO", logger="harness_operator.sim.traffic"):
        run(sim, 10)
        kube.fail = False
        run(sim, 5)
    messages = [r.getMessage() for r in caplog.records]
    assert (
        messages.count("cannot read VirtualService of agents/pr-reviewer: apiserver unreachable")
        == 1
    )
    assert "reading VirtualService of agents/pr-reviewer again" in messages


def test_preview_traffic_reaches_the_canary_whatever_the_weights() -> None:
    kube = FakeKube()
    kube.route(0)
    sim = TrafficSim(kube, NS, NAME, rps=10, seed=1)
    sim.set_preview_rps(4)
    for _ in range(40):
        sim.step(0.25)
    counts = sim.counts()
    assert counts["canary"] == 40
    assert counts["stable"] == 100

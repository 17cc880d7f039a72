"""`TrafficSim`: live traffic, a harness's /metrics and Istio telemetry, on loopback, driven
by the real VirtualService.

Every tick it generates `rps * dt` requests and routes them the way the VirtualService says
(`routing.py`). Request counts are deterministic: each destination accumulates its expected
fractional share and takes whole requests from it, so a 5 % canary gets exactly 5 % of the
requests over time (within one request). Only what happens to a request is random (outcome,
latency), from a seeded generator. Each track's behaviour (error rate, p95 latency, cost and
tokens per request) can be changed at any time from another thread.

Tests drive it with `step(dt)` on the simulation clock (no sleeping, no server); `start()`
adds an HTTP /metrics server on 127.0.0.1 and a thread that ticks every 0.25 s of wall time.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric

from harness_operator.naming import LABEL_REVISION, Track, apex_name, track_name
from harness_operator.sim.routing import NO_ROUTING, RouteShare, Routing, parse_virtual_service
from harness_operator.sim.series import TrackSeries, families

log = logging.getLogger(__name__)

TICK_SECONDS: Final = 0.25
"""Wall-clock period of the background thread."""
VS_REFRESH_SECONDS: Final = 0.5
"""The VirtualService is read at most this often (simulation time)."""
REVISION_REFRESH_SECONDS: Final = 3.0
"""The tracks' Deployments (for the `revision` label) are read at most this often."""
UNKNOWN_REVISION: Final = "unknown"
"""`revision` label of a track whose Deployment is missing or unlabelled."""
LATENCY_SIGMA: Final = 0.4
"""Shape of the log-normal latency distribution (its median is p95 / exp(1.645 sigma))."""
Z_95: Final = 1.6448536269514722
"""Standard normal quantile at 0.95."""


class KubeReader(Protocol):
    """What the simulation needs from `harness_operator.kube.client.Kube`."""

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class TrackBehaviour:
    """How a track answers requests."""

    error_rate: float = 0.0
    """Probability that a request fails (`outcome="error"`, `response_code="500"`)."""
    latency_p95: float = 0.2
    """95th percentile of request latency, in seconds."""
    cost_per_request: float = 0.002
    """Provider cost in USD added by every request (errors included)."""
    tokens_per_request: float = 800.0
    """Tokens (input + output) every request uses."""
    output_token_share: float = 0.25
    """Fraction of `tokens_per_request` counted as `type="output"`."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be within 0..1, not {self.error_rate}")
        if not self.latency_p95 > 0.0:
            raise ValueError(f"latency_p95 must be positive, not {self.latency_p95}")
        if not self.cost_per_request >= 0.0:
            raise ValueError(f"cost_per_request must be >= 0, not {self.cost_per_request}")
        if not self.tokens_per_request >= 0.0:
            raise ValueError(f"tokens_per_request must be >= 0, not {self.tokens_per_request}")
        if not 0.0 <= self.output_token_share <= 1.0:
            raise ValueError(
                f"output_token_share must be within 0..1, not {self.output_token_share}"
            )

    @property
    def latency_mu(self) -> float:
        """µ of the log-normal latency whose 95th percentile is `latency_p95`."""
        return math.log(self.latency_p95) - Z_95 * LATENCY_SIGMA


def as_track(track: str | Track) -> Track:
    try:
        return Track(track)
    except ValueError:
        raise ValueError(f"track must be 'stable' or 'canary', not {track!r}") from None


class _Collector:
    """Exposes the simulation's series to a CollectorRegistry."""

    def __init__(self, sim: TrafficSim) -> None:
        self._sim = sim

    def collect(self) -> Iterable[Metric]:
        return self._sim._collect()


class TrafficSim:
    """Simulated traffic and telemetry for HarnessDeployment `name` in `namespace`."""

    def __init__(
        self,
        kube: KubeReader,
        namespace: str,
        name: str,
        rps: float = 20.0,
        seed: int | None = None,
        *,
        ab_share: float = 0.1,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._rps = 0.0
        self._ab_share = 0.0
        self._preview_rps = 0.0
        self.set_rps(rps)
        self.set_ab_share(ab_share)
        self._now = 0.0
        self._routing: Routing = NO_ROUTING
        self._vs_read_at: float | None = None
        self._revisions: dict[Track, str] = {}
        self._revisions_read_at: float | None = None
        self._carry: dict[tuple[str, int, Track], float] = {}
        self._routed: dict[Track, int] = dict.fromkeys(Track, 0)
        self._mirrored: dict[Track, int] = dict.fromkeys(Track, 0)
        self._behaviour: dict[Track, TrackBehaviour] = dict.fromkeys(Track, TrackBehaviour())
        self._series: dict[Track, TrackSeries] = {}
        self._silent: set[Track] = set()
        self._nan: set[Track] = set()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self._server: WSGIServer | None = None
        self._server_thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._read_errors: dict[str, str | None] = {}

    # --- settings (thread-safe) -----------------------------------------------------------

    def set_track(
        self,
        track: str | Track,
        *,
        error_rate: float | None = None,
        latency_p95: float | None = None,
        cost_per_request: float | None = None,
        tokens_per_request: float | None = None,
        output_token_share: float | None = None,
    ) -> TrackBehaviour:
        """Change how `track` answers from now on; fields left None keep their value.
        Returns the new behaviour."""
        changes = {
            key: float(value)
            for key, value in {
                "error_rate": error_rate,
                "latency_p95": latency_p95,
                "cost_per_request": cost_per_request,
                "tokens_per_request": tokens_per_request,
                "output_token_share": output_token_share,
            }.items()
            if value is not None
        }
        key = as_track(track)
        with self._lock:
            behaviour = replace(self._behaviour[key], **changes)
            self._behaviour[key] = behaviour
        return behaviour

    def behaviour(self, track: str | Track) -> TrackBehaviour:
        with self._lock:
            return self._behaviour[as_track(track)]

    def set_silent(self, track: str | Track, silent: bool = True) -> None:
        """Stop (or resume) exporting `track`'s series, as if it had no traffic at all. The
        mesh still routes requests to it (`counts()` shows them); nothing reports them."""
        key = as_track(track)
        with self._lock:
            (self._silent.add if silent else self._silent.discard)(key)

    def set_nan(self, track: str | Track, nan: bool = True) -> None:
        """Freeze (or unfreeze) `track`'s counters while still exporting them, so that every
        rate over them is 0 and every ratio (error rate, cost per request, histogram_quantile)
        evaluates to NaN once the query window holds only frozen samples. The series exist
        at zero from this call on even if the track never served a request."""
        key = as_track(track)
        with self._lock:
            if nan:
                self._nan.add(key)
                self._track_series(key)
            else:
                self._nan.discard(key)

    def set_rps(self, rps: float) -> None:
        if not (math.isfinite(rps) and rps >= 0):
            raise ValueError(f"rps must be a finite number >= 0, not {rps}")
        with self._lock:
            self._rps = float(rps)

    def set_preview_rps(self, rps: float) -> None:
        """Requests per second sent straight to the canary's own Service (`<name>-canary`),
        bypassing the VirtualService, as a tester does during a blue/green release."""
        if not (math.isfinite(rps) and rps >= 0):
            raise ValueError(f"preview rps must be a finite number >= 0, not {rps}")
        with self._lock:
            self._preview_rps = float(rps)

    def set_ab_share(self, share: float) -> None:
        """Fraction of requests carrying the A/B header (only matters while the
        VirtualService has a `match` route)."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"ab_share must be within 0..1, not {share}")
        with self._lock:
            self._ab_share = float(share)

    @property
    def rps(self) -> float:
        return self._rps

    @property
    def ab_share(self) -> float:
        return self._ab_share

    # --- observations ----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Requests the mesh routed to each track so far (mirrored copies included), whether
        or not the track reports them (silent, NaN)."""
        with self._lock:
            return {str(track): count for track, count in self._routed.items()}

    def mirrored_counts(self) -> dict[str, int]:
        """Of `counts()`, the mirrored copies."""
        with self._lock:
            return {str(track): count for track, count in self._mirrored.items()}

    @property
    def routing(self) -> Routing:
        """The routing last read from the VirtualService."""
        with self._lock:
            return self._routing

    def revision(self, track: str | Track) -> str:
        """The `revision` label `track`'s series carry."""
        with self._lock:
            return self._revisions.get(as_track(track), UNKNOWN_REVISION)

    @property
    def clock(self) -> float:
        """Simulation time: the sum of all `step` durations."""
        with self._lock:
            return self._now

    # --- simulation ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the VirtualService and Deployments again at the next step."""
        with self._lock:
            self._vs_read_at = None
            self._revisions_read_at = None

    def step(self, dt: float) -> None:
        """Advance the simulation by `dt` seconds: re-read what is due, then generate and
        account for `rps * dt` requests."""
        if not (math.isfinite(dt) and dt >= 0):
            raise ValueError(f"dt must be a finite number >= 0, not {dt}")
        with self._lock:
            self._now += dt
            now = self._now
            read_vs = self._due(self._vs_read_at, VS_REFRESH_SECONDS)
            read_revisions = self._due(self._revisions_read_at, REVISION_REFRESH_SECONDS)
        # API calls outside the lock: a slow apiserver must not block a scrape.
        routing = self._read_routing() if read_vs else None
        revisions = self._read_revisions() if read_revisions else None
        with self._lock:
            if read_vs:
                self._vs_read_at = now
                if routing is not None:
                    self._routing = routing
            if read_revisions:
                self._revisions_read_at = now
                if revisions is not None:
                    self._apply_revisions(revisions)
            self._generate(dt)

    def _due(self, read_at: float | None, period: float) -> bool:
        return read_at is None or self._now - read_at >= period - 1e-9

    def _read_routing(self) -> Routing | None:
        try:
            vs = self.kube.get(
                "networking.istio.io/v1", "VirtualService", self.namespace, apex_name(self.name)
            )
        except Exception as err:  # keep simulating on the last routing
            self._warn_once("VirtualService", err)
            return None
        self._warn_once("VirtualService", None)
        return parse_virtual_service(vs, self.namespace, self.name)

    def _read_revisions(self) -> dict[Track, str] | None:
        revisions = {}
        for track in Track:
            try:
                deployment = self.kube.get(
                    "apps/v1", "Deployment", self.namespace, track_name(self.name, track)
                )
            except Exception as err:
                self._warn_once("Deployment", err)
                return None
            revisions[track] = _template_revision(deployment)
        self._warn_once("Deployment", None)
        return revisions

    def _warn_once(self, kind: str, err: Exception | None) -> None:
        """Log a read error when it starts or changes, and when reads work again (not at
        every tick of an apiserver outage)."""
        text = None if err is None else str(err)
        previous = self._read_errors.get(kind)
        if text == previous:
            return
        self._read_errors[kind] = text
        if text is not None:
            log.warning("cannot read %s of %s/%s: %s", kind, self.namespace, self.name, text)
        else:
            log.info("reading %s of %s/%s again", kind, self.namespace, self.name)

    def _apply_revisions(self, revisions: Mapping[Track, str]) -> None:
        for track, revision in revisions.items():
            if self._revisions.get(track) != revision:
                self._revisions[track] = revision
                # A new revision is a new pod: its series start over.
                self._series.pop(track, None)
                if track in self._nan:
                    self._track_series(track)

    def _generate(self, dt: float) -> None:
        volume = self._rps * dt
        routing = self._routing
        flows: list[tuple[RouteShare, float]] = []
        if routing.has_match:
            if routing.header is not None:
                flows.append((routing.header, volume * self._ab_share))
            if routing.plain is not None:
                flows.append((routing.plain, volume * (1.0 - self._ab_share)))
        elif routing.plain is not None:
            flows.append((routing.plain, volume))
        if self._preview_rps:
            # A tester hitting the canary's own Service directly (blue/green preview).
            self._serve(
                Track.CANARY, self._take(("preview", -1, Track.CANARY), self._preview_rps * dt)
            )
        for route, route_volume in flows:
            for track, share in route.weights.items():
                self._serve(track, self._take(("route", route.index, track), route_volume * share))
            for track, share in route.mirror.items():
                copies = self._take(("mirror", route.index, track), route_volume * share)
                self._mirrored[track] += copies
                self._serve(track, copies)

    def _take(self, key: tuple[str, int, Track], expected: float) -> int:
        """Whole requests out of the fractional amount accumulated for `key`."""
        carry = self._carry.get(key, 0.0) + expected
        whole = math.floor(carry + 1e-9)
        self._carry[key] = carry - whole
        return whole

    def _serve(self, track: Track, requests: int) -> None:
        if requests <= 0:
            return
        self._routed[track] += requests
        if track in self._silent or track in self._nan:
            return
        series = self._track_series(track)
        behaviour = self._behaviour[track]
        mu = behaviour.latency_mu
        output_tokens = behaviour.tokens_per_request * behaviour.output_token_share
        input_tokens = behaviour.tokens_per_request - output_tokens
        for _ in range(requests):
            series.record(
                error=self._rng.random() < behaviour.error_rate,
                latency=self._rng.lognormvariate(mu, LATENCY_SIGMA),
                cost=behaviour.cost_per_request,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )

    def _track_series(self, track: Track) -> TrackSeries:
        series = self._series.get(track)
        if series is None:
            series = TrackSeries(revision=self._revisions.get(track, UNKNOWN_REVISION))
            self._series[track] = series
        return series

    def _collect(self) -> list[Metric]:
        with self._lock:
            shown = {t: s for t, s in self._series.items() if t not in self._silent}
            return list(families(self.namespace, self.name, shown))

    # --- serving ---------------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """Port of the /metrics server while it runs."""
        return None if self._server is None else int(self._server.server_address[1])

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://127.0.0.1:{self.port}/metrics"

    def start(self, port: int = 0) -> int:
        """Serve /metrics on 127.0.0.1:`port` (0: any free port) and tick every 0.25 s in a
        background thread until `stop()`. Returns the port."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError(f"the simulation already serves on port {self.port}")
            server, server_thread = start_http_server(
                port, addr="127.0.0.1", registry=self.registry
            )
            self._server, self._server_thread = server, server_thread
            self._stopping = threading.Event()
            self._ticker = threading.Thread(
                target=self._tick_until_stopped, name=f"traffic-sim-{self.name}", daemon=True
            )
            self._ticker.start()
            return int(server.server_address[1])

    def _tick_until_stopped(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(TICK_SECONDS):
            now = time.monotonic()
            try:
                self.step(now - last)
            except Exception:  # one bad tick must not end the simulation
                log.exception("traffic simulation tick failed")
            last = now

    def stop(self) -> None:
        """Stop ticking and serving; safe to call more than once."""
        self._stopping.set()
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.join(timeout=10)
        with self._lock:
            server, self._server = self._server, None
            server_thread, self._server_thread = self._server_thread, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if server_thread is not None:
            server_thread.join(timeout=10)

    def __enter__(self) -> TrafficSim:
        """Starts serving on any free port unless `start()` was called already."""
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _template_revision(deployment: Mapping[str, Any] | None) -> str:
    if deployment is None:
        return UNKNOWN_REVISION
    labels = (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}
    revision = labels.get(LABEL_REVISION)
    return str(revision) if revision else UNKNOWN_REVISION

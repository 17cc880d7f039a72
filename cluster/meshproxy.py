"""The mesh stand-in: a loopback HTTP proxy that sends each request to a stable or a canary
pod's container in the proportions the live VirtualService gives, and a bounded task load.

No Envoy runs here. The proxy reads the VirtualService the operator writes (the same
parsing the operator uses to read routes back), and splits requests between the tracks'
ready containers that `PodRunner` runs. The split is deterministic, like the traffic
simulator's: each track accumulates its expected share and the one furthest behind takes
the next request, so a 10 % canary gets 10 % of the requests within one. A track with no
ready container sends its share to the other; with none at all the answer is 503, as a mesh
with no endpoints would give.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from harness_operator.render import HarnessRef
from harness_operator.traffic import observe_route
from podrunner import PodRunner, RunningPod

TRACKS = ("stable", "canary")
WEIGHT_REFRESH_SECONDS = 0.25


class Splitter:
    """Which track takes the next request, for a canary weight (pure)."""

    def __init__(self) -> None:
        self.owed = dict.fromkeys(TRACKS, 0.0)

    def pick(self, canary_weight: int, ready: set[str]) -> str | None:
        if not ready:
            return None
        if len(ready) == 1:
            # One track has endpoints: it takes everything, and nobody is owed anything
            # when the other comes back (no burst to make up for the gap).
            self.owed = dict.fromkeys(TRACKS, 0.0)
            return next(iter(ready))
        shares = {"stable": (100 - canary_weight) / 100, "canary": canary_weight / 100}
        for track in TRACKS:
            self.owed[track] += shares[track]
        candidates = list(TRACKS)
        choice = max(candidates, key=lambda t: self.owed[t])
        self.owed[choice] -= 1.0
        return choice


class MeshProxy:
    """See the module doc. `read_vs()` returns the live VirtualService (or None)."""

    def __init__(
        self,
        read_vs: Callable[[], dict[str, Any] | None],
        namespace: str,
        name: str,
        runner: PodRunner,
    ) -> None:
        self.read_vs = read_vs
        self.namespace = namespace
        self.name = name
        self.runner = runner
        self.splitter = Splitter()
        self.counts: Counter[tuple[str, int]] = Counter()
        self._weight = 0
        self._weight_at = 0.0
        self._next: dict[str, int] = dict.fromkeys(TRACKS, 0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def canary_weight(self) -> int:
        now = time.monotonic()
        if now - self._weight_at >= WEIGHT_REFRESH_SECONDS:
            self._weight_at = now
            vs = self.read_vs()
            route = (
                observe_route(HarnessRef(self.name, self.namespace, ""), vs)
                if vs is not None
                else None
            )
            self._weight = route.canary_weight if route is not None else 0
        return self._weight

    def choose(self) -> RunningPod | None:
        ready: dict[str, list[RunningPod]] = {t: [] for t in TRACKS}
        for pod in self.runner.pods():
            if pod.ready and pod.track in ready:
                ready[pod.track].append(pod)
        track = self.splitter.pick(self.canary_weight(), {t for t in TRACKS if ready[t]})
        if track is None:
            return None
        pods = sorted(ready[track], key=lambda p: p.pod)
        self._next[track] = (self._next[track] + 1) % len(pods)
        return pods[self._next[track]]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if time.monotonic() - self._weight_at >= WEIGHT_REFRESH_SECONDS:
            await asyncio.to_thread(self.canary_weight)  # the apiserver GET, off the loop
        pod = self.choose()
        if pod is None:
            self.counts[("none", 503)] += 1
            return web.Response(status=503, text="no ready endpoints")
        body = await request.read()
        url = f"http://127.0.0.1:{pod.port}{request.rel_url}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        assert self._session is not None
        try:
            async with self._session.request(
                request.method, url, data=body, headers=headers
            ) as upstream:
                payload = await upstream.read()
                self.counts[(pod.track, upstream.status)] += 1
                keep = {"content-type", "retry-after"}
                return web.Response(
                    status=upstream.status,
                    body=payload,
                    headers={k: v for k, v in upstream.headers.items() if k.lower() in keep},
                )
        except Exception:
            self.counts[(pod.track, 502)] += 1
            return web.Response(status=502, text="upstream failed")

    def start(self) -> MeshProxy:
        started = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def setup() -> None:
                self._session = ClientSession(timeout=ClientTimeout(total=120))
                app = web.Application()
                app.router.add_route("*", "/{tail:.*}", self._handle)
                self._runner = web.AppRunner(app, access_log=None)
                await self._runner.setup()
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                await site.start()
                server = site._server
                assert server is not None
                self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

            loop.run_until_complete(setup())
            started.set()
            loop.run_forever()

        self._session: ClientSession | None = None
        self._thread = threading.Thread(target=serve, name="meshproxy", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the mesh proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def teardown() -> None:
            if self._session is not None:
                await self._session.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(teardown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None

    def stats(self) -> dict[str, int]:
        """Requests answered per track (any status)."""
        out: Counter[str] = Counter()
        for (track, _), count in self.counts.items():
            out[track] += count
        return dict(out)

    def __enter__(self) -> MeshProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class TaskLoad:
    """`POST /v1/tasks` at `rate` per second, at most `concurrency` in flight (a full slot
    drops the task rather than queueing it), for at most `max_seconds`."""

    def __init__(
        self,
        url: str,
        rate: float,
        concurrency: int = 8,
        prompt: str = "Review this change and summarise the risks.",
        max_seconds: float = 600.0,
    ) -> None:
        self.url = url.rstrip("/") + "/v1/tasks"
        self.rate = rate
        self.prompt = prompt
        self.max_seconds = max_seconds
        self.outcomes: Counter[int] = Counter()
        self._outcomes_lock = threading.Lock()  # `+=` on a Counter is not atomic
        self.dropped = 0
        self._slots = threading.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="taskload")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskload", daemon=True)

    def start(self) -> TaskLoad:
        self._thread.start()
        return self

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        started = time.monotonic()
        owed = 0.0
        last = started
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            now = time.monotonic()
            owed += self.rate * (now - last)
            last = now
            while owed >= 1.0:
                owed -= 1.0
                if self._slots.acquire(blocking=False):
                    self._pool.submit(self._send)
                else:
                    self.dropped += 1
            self._stop.wait(0.05)

    def _send(self) -> None:
        import json

        data = json.dumps({"prompt": self.prompt}).encode()
        request = urllib.request.Request(
            self.url, data=data, headers={"content-type": "application/json"}
        )
        status = 0
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        except OSError:
            status = 0
        finally:
            with self._outcomes_lock:
                self.outcomes[status] += 1
            self._slots.release()

"""A loopback task queue for worker-shaped harnesses (tests and the demo).

Workers lease tasks and report them done; nothing here knows tracks or revisions: the
canary and stable workers consume the same queue, so the canary's share of the work is its
share of the consumers — what a worker release steps through. Stats say who took what
(`worker` is whatever the worker sends, e.g. its pod name).

HTTP: `POST /tasks` `{"prompts": [...]}` enqueues; `POST /lease` `{"worker": ...}` gives
`{"id", "prompt"}` or 204 when empty; `POST /done/<id>` `{"outcome": ...}`; `GET /stats`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class _Queue:
    pending: deque[tuple[int, str]] = field(default_factory=deque)
    leased: dict[int, str] = field(default_factory=dict)
    next_id: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_worker: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class TaskQueue:
    """The queue and its loopback HTTP server (a thread)."""

    def __init__(self) -> None:
        self.state = _Queue()
        queue = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                return

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                data = json.loads(self.rfile.read(length) or b"{}")
                return data if isinstance(data, dict) else {}

            def _send(self, status: int, payload: Any = None) -> None:
                raw = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                body = self._body()
                with queue.lock:
                    if self.path == "/tasks":
                        for prompt in body.get("prompts") or []:
                            queue.pending.append((queue.next_id, str(prompt)))
                            queue.next_id += 1
                        self._send(200, {"depth": len(queue.pending)})
                    elif self.path == "/lease":
                        if not queue.pending:
                            self._send(204)
                            return
                        task_id, prompt = queue.pending.popleft()
                        worker = str(body.get("worker") or "")
                        queue.leased[task_id] = worker
                        queue.by_worker[worker] += 1
                        self._send(200, {"id": task_id, "prompt": prompt})
                    elif self.path.startswith("/done/"):
                        task_id = int(self.path.rsplit("/", 1)[1])
                        queue.leased.pop(task_id, None)
                        queue.outcomes[str(body.get("outcome") or "unknown")] += 1
                        self._send(200, {})
                    else:
                        self._send(404, {"error": "not found"})

            def do_GET(self) -> None:
                if self.path != "/stats":
                    self._send(404, {"error": "not found"})
                    return
                with queue.lock:
                    self._send(
                        200,
                        {
                            "depth": len(queue.pending),
                            "leased": len(queue.leased),
                            "outcomes": dict(queue.outcomes),
                            "byWorker": dict(queue.by_worker),
                        },
                    )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> TaskQueue:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def put(self, *prompts: str) -> None:
        with self.state.lock:
            for prompt in prompts:
                self.state.pending.append((self.state.next_id, prompt))
                self.state.next_id += 1

    @property
    def depth(self) -> int:
        with self.state.lock:
            return len(self.state.pending)

    def by_worker(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.by_worker)

    def done(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.outcomes)

    def __enter__(self) -> TaskQueue:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

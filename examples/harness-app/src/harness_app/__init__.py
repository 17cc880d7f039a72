"""harness-app: the reference agent harness that harness-operator deploys and canary-releases.

A small HTTP task API on the anthropic SDK. Every module owns one concern: `config` (the
environment), `pricing` (token prices), `errors` (SDK exception classes and retry policy),
`providers` (SDK clients and credential presence), `tools` (the built-in tools), `agent`
(the agent loop), `metrics` (Prometheus series), `logs` (JSON logging), `server` (the
aiohttp app, probes and graceful drain), `worker` (tasks leased from a queue) and `run`
(run mode: a fixed number of tasks and a run report, for Jobs).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harness-app")
except PackageNotFoundError:  # run from a source tree (PYTHONPATH=src), not installed
    __version__ = "0.0.0+source"

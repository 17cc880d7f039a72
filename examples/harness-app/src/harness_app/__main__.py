"""Entry point: `python -m harness_app` and the `harness-app` console script.

Owns process start-up: logging, configuration (an invalid environment exits with status 2
and one JSON log line naming the variable) and the event loop. A drained shutdown exits 0;
run mode (`HARNESS_RUN_TASKS`) exits 0 or 1 by its tasks' outcomes (see `run`).
"""

from __future__ import annotations

import asyncio
import logging
import os

from prometheus_client import disable_created_metrics

from harness_app.config import ConfigError, load_config
from harness_app.logs import log, setup_logging

logger = logging.getLogger("harness_app")


def main() -> int:
    setup_logging()
    # No `*_created` series: they double the series count. (Untyped in prometheus-client.)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        log(logger, logging.ERROR, f"invalid configuration: {exc}")
        return 2
    # Imported after the configuration check: the SDK takes a second or two to import, and a
    # bad environment should fail at once.
    if config.run_tasks is not None:
        from harness_app.run import run

        return asyncio.run(run(config, os.environ))
    from harness_app.server import serve

    asyncio.run(serve(config, os.environ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

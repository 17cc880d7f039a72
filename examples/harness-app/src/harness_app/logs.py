"""JSON logging: one object per line on stderr.

Owns the formatter and the `log` helper that attaches structured fields. Nothing secret is
ever logged: no credentials, no headers, no prompt or answer text. The SDK's and HTTP
client's loggers are held at WARNING, because their debug output (`ANTHROPIC_LOG=debug`)
includes request options.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final

_FIELDS: Final = "harness_fields"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, _FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def setup_logging(level: int = logging.INFO) -> None:
    """Route all logging to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDK warns through `warnings` (e.g. a deprecated model): make those JSON too.
    logging.captureWarnings(True)
    for noisy in ("anthropic", "httpx2", "httpcore2", "httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log(logger: logging.Logger, level: int, message: str, **fields: object) -> None:
    """Log `message` with structured `fields` (top-level keys of the JSON object)."""
    logger.log(level, message, extra={_FIELDS: fields})

"""JSON structured logging on stderr (stdout stays for command output): one object per line."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON with time, level, logger, message and every ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RepeatFilter(logging.Filter):
    """Lets one record per logger, level and message template through every ``interval``
    seconds, for the loggers under ``prefix`` (others pass); the next one let through
    says how many were suppressed (``suppressed``). For aiokafka, whose reconnect loops
    log each failed attempt while a broker is down. Time comes from ``clock``."""

    def __init__(
        self,
        prefix: str = "aiokafka",
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        super().__init__()
        self.prefix, self.interval, self.clock, self.max_keys = prefix, interval, clock, max_keys
        self.seen: dict[tuple[str, int, object], tuple[float, int]] = {}
        """Per key: when a record last went through, and how many were suppressed since."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != self.prefix and not record.name.startswith(f"{self.prefix}."):
            return True
        key = (record.name, record.levelno, record.msg)
        now = self.clock()
        passed, suppressed = self.seen.get(key, (float("-inf"), 0))
        if now - passed < self.interval:
            self.seen[key] = (passed, suppressed + 1)
            return False
        if len(self.seen) >= self.max_keys:
            self.seen.clear()
        self.seen[key] = (now, 0)
        if suppressed:
            record.suppressed = suppressed
        return True


def configure_logging(level: str, log_format: str) -> None:
    """Route every logger (uvicorn's too) to stderr in the chosen format, aiokafka's
    repeated messages rate-limited (:class:`RepeatFilter`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True

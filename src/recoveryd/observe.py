"""Logging setup (structlog) and the secret-redacting processor.

The daemon logs JSON lines to stdout (journald) when stdout is not a terminal
or when it runs under systemd; on a terminal it logs readable console lines.
CLI commands log to stderr, so that `--json` keeps stdout for its document.
Library logs (APScheduler, botocore...) go through the same renderer.

Every record passes `redact`, which applies the one rule of `recoveryd.secrets`:
values of secret keys, passwords inside DSNs and URLs, secret headers and every
secret value resolved or declared in this process are replaced by `***` before
anything is rendered.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from recoveryd.secrets import MASK, REDACTOR, is_secret_name, redact_tree


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: no secret leaves the process through a log line."""
    for key in list(event_dict):
        value = event_dict[key]
        event_dict[key] = MASK if is_secret_name(key) and value else redact_tree(value)
    return event_dict


def _format_exc(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Render exc_info to text, then redact it like the rest."""
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(_logger, _method, event_dict)
        if "exception" in event_dict:
            event_dict["exception"] = REDACTOR.redact(str(event_dict["exception"]))
    return event_dict


def _json_wanted(stream: Any, daemon: bool) -> bool:
    if daemon and os.environ.get("JOURNAL_STREAM"):
        return True  # systemd connected stdout to journald
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def configure_logging(level: str = "info", *, daemon: bool, stream: Any = None) -> None:
    """Set up structlog and the standard library logging it renders through.

    `daemon=True`: stdout, JSON unless on a terminal. `daemon=False` (CLI): stderr.
    May be called again (tests, SIGHUP) and replaces the previous setup.
    """
    out = stream if stream is not None else (sys.stdout if daemon else sys.stderr)
    handler: logging.Handler = (
        logging.StreamHandler(stream)
        if stream is not None
        else _StdStreamHandler("stdout" if daemon else "stderr")
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _format_exc,
        redact,
    ]
    renderer: Any
    if _json_wanted(out, daemon):
        renderer = structlog.processors.JSONRenderer(sort_keys=False, default=str)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # APScheduler announces every job execution at INFO; our summary events say more.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))


class _StdStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout`/`sys.stderr` is at the time of the record
    (they may be replaced after set-up: test capture, daemonisation)."""

    def __init__(self, which: str) -> None:
        self._which = which  # not `_name`: logging.Handler uses that
        super().__init__()

    @property
    def stream(self) -> Any:
        return getattr(sys, self._which)

    @stream.setter
    def stream(self, _value: Any) -> None:
        return


def get_logger(name: str) -> Any:
    """A structlog logger named after the module (`recoveryd.daemon.service`...)."""
    return structlog.get_logger(name)

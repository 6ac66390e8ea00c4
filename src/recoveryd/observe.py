"""Logging setup (structlog) and the secret-redacting processor.

The daemon logs JSON lines to stdout (journald) when stdout is not a terminal
or when it runs under systemd; on a terminal it logs readable console lines.
CLI commands log to stderr, so that `--json` keeps stdout for its document.
Library logs (APScheduler, botocore...) go through the same renderer.

Every record passes `redact`: values of password-like keys, passwords inside
DSNs and URLs, and every secret value registered with `add_secret` are
replaced by `***` before anything is rendered.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog

from recoveryd.secrets import REDACTOR

REDACTED = "***"

_SECRET_KEY = re.compile(
    r"(password|passwd|passphrase|^pass$|pwd|secret|token|api[_-]?key|access[_-]?key|"
    r"private[_-]?key|credential|authorization|cookie)",
    re.IGNORECASE,
)
# scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)")
# libpq key=value DSNs and similar: password=..., password='...'
_KV_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token)\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)",
    re.IGNORECASE,
)


def add_secret(value: str) -> None:
    """Register a secret value (a resolved password, key...) so that logs never show it.

    Shares the process-wide redactor `recoveryd.secrets.REDACTOR`, which
    `resolve_secret` feeds with every value it reads.
    """
    REDACTOR.add(value)


def redact_text(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with DSN/URL passwords and known secret values replaced by `***`."""
    for secret in sorted((s for s in extra if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = REDACTOR.redact(text)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
    return _KV_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not key.endswith(("_file", "_ref"))


def redact_value(value: Any) -> Any:
    """Recursively redact a logged value (strings, mappings, sequences)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, BaseException):
        return redact_text(str(value))
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: no secret leaves the process through a log line."""
    for key in list(event_dict):
        if is_secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact_value(event_dict[key])
    return event_dict


def _format_exc(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Render exc_info to text, then redact it like the rest."""
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(_logger, _method, event_dict)
        if "exception" in event_dict:
            event_dict["exception"] = redact_text(str(event_dict["exception"]))
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

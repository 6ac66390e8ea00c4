"""Value types of the configuration and playbooks, each with the range that gives it meaning.

A value that parses but means nothing (`rpo: 0s`, a percentage of 150, a port
of 70000, `listen: banana`, a duration of 10^30 seconds, a time zone that
does not exist) is refused here, at its own key, with a sentence saying what
is accepted. The JSON Schema of `recoveryd config schema` describes the same
types (`json_schema_extra` where the Python type alone would mislead an editor).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from recoveryd.units import format_duration, parse_duration, parse_size

MAX_DURATION = 100 * 365 * 86400.0
"""No duration in the product means anything beyond a century."""
MAX_SIZE = 1024**5
"""1 PiB: larger than any part, rate or bandwidth the product can use."""
MAX_NUMBER = 1e12
"""Thresholds and counts above this are typing mistakes."""
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"},
    ],
    "description": "a duration: seconds, or text such as 30s, 5m, 4h, 1h30m, 7d",
}
_SIZE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"(?i)^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)?\s*(/s)?\s*$"},
    ],
    "description": "a size in bytes, or text such as 64MiB, 1GB, 200MiB/s",
}


def _duration_at_least(low: float, *, strict: bool) -> Any:
    def check(value: Any) -> float:
        if isinstance(value, list | dict):
            raise ValueError("expected a duration such as 30s, 5m or 4h, not a list or mapping")
        seconds = parse_duration(value)
        if not math.isfinite(seconds) or seconds > MAX_DURATION:
            raise ValueError(f"{value!r} is beyond any meaningful duration (at most 100 years)")
        if seconds < low or (strict and seconds <= low):
            bound = "longer than" if strict else "at least"
            shown = "zero" if low == 0 else format_duration(low)
            raise ValueError(f"must be {bound} {shown} (got {value!r})")
        return seconds

    return check


Duration = Annotated[
    float, BeforeValidator(_duration_at_least(0, strict=False)), WithJsonSchema(_DURATION_SCHEMA)
]
"""A duration of zero or more (`0s` allowed: no delay, no jitter)."""
PositiveDuration = Annotated[
    float, BeforeValidator(_duration_at_least(0, strict=True)), WithJsonSchema(_DURATION_SCHEMA)
]
"""A duration that must be longer than zero (timeouts, intervals, RPO, RTO)."""
MIN_LEASE = 5.0


def _lease(value: Any) -> float:
    seconds = float(_duration_at_least(0, strict=True)(value))
    if seconds < MIN_LEASE:
        raise ValueError(
            f"a lease of {value!r} is too short: set 5s or more (a shorter lease expires "
            "while a busy host is still alive)"
        )
    return seconds


Lease = Annotated[float, BeforeValidator(_lease), WithJsonSchema(_DURATION_SCHEMA)]
"""A fleet member's lease: 5 s or more."""


def _size_between(low: int, high: int) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, float) and not isinstance(value, bool):
            if not math.isfinite(value) or value != int(value):
                raise ValueError(f"{value!r} is not a size; write it like 64MiB or 1GB")
            value = int(value)
        if not isinstance(value, int | str):
            raise ValueError("expected a size such as 64MiB, not a list or mapping")
        size = parse_size(value)
        if size < low or size > high:
            raise ValueError(f"must be between {_bytes(low)} and {_bytes(high)} (got {value!r})")
        return size

    return check


def _bytes(n: int) -> str:
    for unit, factor in (("PiB", 1024**5), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


Size = Annotated[int, BeforeValidator(_size_between(0, MAX_SIZE)), WithJsonSchema(_SIZE_SCHEMA)]
PositiveSize = Annotated[
    int, BeforeValidator(_size_between(1, MAX_SIZE)), WithJsonSchema(_SIZE_SCHEMA)
]
PartSize = Annotated[
    int,
    BeforeValidator(_size_between(5 * 1024**2, 5 * 1024**3)),
    WithJsonSchema(_SIZE_SCHEMA),
]
"""An S3 multipart part: S3 accepts 5 MiB to 5 GiB."""
PackSize = Annotated[
    int,
    BeforeValidator(_size_between(16 * 1024, 128 * 1024**2)),
    WithJsonSchema(_SIZE_SCHEMA),
]
"""A repository's pack objects: the format allows 16 KiB to 128 MiB (docs/FORMAT.md §5)."""
DEFAULT_PACK_SIZE = 16 * 1024**2

Number = Annotated[float, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1, max_length=4096)]
"""A non-empty value (a path, a command word, a DSN, a name) of sensible length."""


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        if not _HOSTNAME.match(value):
            raise ValueError(
                f'"{value}" is not a host name or IP address; write one like 10.0.0.5 or db1'
            ) from None
    return value


HostName = Annotated[str, AfterValidator(_host)]


def _host_port(value: str, what: str, example: str, *, lowest: int = 1) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f'"{value}" is not {what}; write it like {example}')
    number = int(port)
    if not lowest <= number <= 65535:
        raise ValueError(f'port {port} of "{value}" is not between {lowest} and 65535')
    _host(host)
    return host, number


def _listen(value: str) -> str:
    # port 0: any free port, chosen by the kernel (tests, and a second daemon on one host)
    _host_port(value, "an address to listen on (host:port)", "127.0.0.1:9187", lowest=0)
    return value


ListenAddress = Annotated[str, AfterValidator(_listen)]


def _server(value: str) -> str:
    if ":" in value.strip("[]") and not value.startswith("[") and value.count(":") == 1:
        _host_port(value, "host:port", "smtp.example.org:25")
    elif value.startswith("["):
        _host_port(value, "host:port", "[2001:db8::1]:25")
    else:
        _host(value)
    return value


ServerAddress = Annotated[str, AfterValidator(_server)]
"""`host` or `host:port`."""


def _http_url(value: str) -> str:
    problem = f'"{value}" is not an http(s) URL; write it like https://host:port/path'
    if any(c.isspace() for c in value):
        raise ValueError(problem)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(problem)
    if port == 0:
        raise ValueError(f'port 0 of "{value}" is not between 1 and 65535')
    return value


HttpUrl = Annotated[
    str, AfterValidator(_http_url), Field(json_schema_extra={"pattern": "^https?://"})
]


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'unknown time zone "{value}"; use an IANA name such as Asia/Shanghai or UTC'
        ) from None
    return value


TimeZone = Annotated[str, AfterValidator(_timezone)]


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or any(c.isspace() for c in value):
        raise ValueError(f'"{value}" is not an e-mail address; write it like ops@example.org')
    _host(domain)
    return value


Email = Annotated[str, AfterValidator(_email)]

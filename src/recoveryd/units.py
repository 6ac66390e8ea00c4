"""Human-readable durations (`30s`, `4h`, `1h30m`, `200ms`) and sizes (`200MiB`, `1.5GB`)."""

from __future__ import annotations

import re
from typing import Literal

DurationUnit = Literal["d", "h", "min", "s"]
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*(/s)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_duration(text: object) -> float:
    """Seconds in a duration such as `30s`, `4h`, `1h30m` or `200ms`; bare numbers are seconds.

    Raises ValueError with a sentence that says what is accepted.
    """
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 30s, 5m or 4h")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    if not isinstance(text, str):
        raise ValueError("expected a duration such as 30s, 5m or 4h")
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError("expected a duration such as 30s, 5m or 4h")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_FACTORS[match.group(2)]
        pos = match.end()
    if pos != len(compact):
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 5m, 4h or 1h30m")
    return total


def parse_size(text: object) -> int:
    """Bytes in a size such as `200MiB`, `1.5GB` or `512`; a trailing `/s` is allowed for rates."""
    if isinstance(text, bool):
        raise ValueError("expected a size such as 64MiB")
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a size cannot be negative")
        return text
    if not isinstance(text, str):
        raise ValueError("expected a size such as 64MiB")
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write it like 64MiB, 1GB or 200MiB/s")
    unit = (match.group(2) or "B").lower()
    return int(float(match.group(1)) * _SIZE_FACTORS[unit])


def format_duration(seconds: float) -> str:
    """A short human form: `850ms`, `42s`, `3m07s`, `4h00m`, `2d03h`."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    (major, big), (minor, small) = split_duration(seconds)
    short: dict[DurationUnit, str] = {"d": "d", "h": "h", "min": "m", "s": "s"}
    return f"{major}{short[big]}{minor:02d}{short[small]}"


def split_duration(
    seconds: float,
) -> tuple[tuple[int, DurationUnit], tuple[int, DurationUnit]]:
    """A duration of a minute or more as its two largest units worth showing, rounded
    to the second: minutes and seconds under an hour, hours and minutes under 48 hours,
    else days and hours. Units are named "d", "h", "min" and "s"."""
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return (minutes, "min"), (secs, "s")
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return (hours, "h"), (minutes, "min")
    days, hours = divmod(hours, 24)
    return (days, "d"), (hours, "h")


def format_size(n: float) -> str:
    """A short binary-unit form: `512 B`, `3.4 MiB`, `1.20 GiB`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"

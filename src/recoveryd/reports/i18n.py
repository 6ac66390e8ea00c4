"""Translated strings and localised dates and durations for zh-CN and en.

The catalog is a typed dict (`Messages`, a TypedDict) rather than gettext
.po/.mo files: two languages maintained by the same team, no translator
tool chain, no compile step to forget, and mypy refuses a catalog with a
missing key, so neither language can fall behind the template set.
Sentences take named `str.format` parameters; the renderer localises
durations and dates before substituting them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Literal, TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recoveryd.reports._messages_en import EN
from recoveryd.reports._messages_zh import ZH
from recoveryd.reports.messages import Messages
from recoveryd.units import split_duration

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")

_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Units(TypedDict):
    d: str
    h: str
    min: str
    s: str
    sep: str


_UNITS: dict[Lang, _Units] = {
    "en": {"d": " d", "h": " h", "min": " min", "s": " s", "sep": " "},
    "zh": {"d": "天", "h": "小时", "min": "分", "s": "秒", "sep": ""},
}


def catalog(lang: str) -> Messages:
    """The message catalog of `lang` ("en" or "zh"); ValueError for any other."""
    if lang == "en":
        return EN
    if lang == "zh":
        return ZH
    raise ValueError(f'unknown report language "{lang}"; use en or zh')


def zone(name: str) -> tzinfo:
    """The time zone of an IANA name (`Asia/Shanghai`); UTC for "UTC" or an unknown name."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_label(name: str, at: datetime) -> str | None:
    """`Asia/Shanghai (UTC+08:00)` for the zone of `name` at `at`; None for UTC itself."""
    tz = zone(name)
    if tz is UTC:
        return None
    offset = at.astimezone(tz).strftime("%z")
    return f"{name} (UTC{offset[:3]}:{offset[3:]})"


def format_datetime(t: datetime, lang: str, tz: tzinfo = UTC) -> str:
    """`23 Nov 2026 15:01:02` (en) or `2026年11月23日 15:01:02` (zh), in `tz` (reports state
    the time zone once)."""
    u = t.astimezone(tz)
    clock = u.strftime("%H:%M:%S")
    if lang == "zh":
        return f"{u.year}年{u.month}月{u.day}日 {clock}"
    return f"{u.day} {_EN_MONTHS[u.month - 1]} {u.year} {clock}"


def format_date(d: date, lang: str) -> str:
    """`7 Dec 2026` (en) or `2026年12月7日` (zh)."""
    if lang == "zh":
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{d.day} {_EN_MONTHS[d.month - 1]} {d.year}"


def format_clock(t: datetime, tz: tzinfo = UTC) -> str:
    """`15:01:02.345` in `tz`, for timeline rows that already show the date once."""
    u = t.astimezone(tz)
    return u.strftime("%H:%M:%S.") + f"{u.microsecond // 1000:03d}"


def format_duration(seconds: float, lang: str) -> str:
    """Readable durations: en `42.3 s`, `2 min 05 s`, `3 h 20 min`; zh `42.3秒`, `2分05秒`."""
    u = _UNITS["zh" if lang == "zh" else "en"]
    sep = u["sep"]
    if seconds < 0:
        return "-" + format_duration(-seconds, lang)
    if seconds < 60:
        text = f"{seconds:.1f}".removesuffix(".0") if seconds < 10 else f"{seconds:.0f}"
        return f"{text}{u['s']}"
    (major, big), (minor, small) = split_duration(seconds)
    minor_text = str(minor) if big == "d" else f"{minor:02d}"
    return f"{major}{u[big]}{sep}{minor_text}{u[small]}"


def format_offset(seconds: float) -> str:
    """Time since the start of the run: `T+0:00:12.5`."""
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"T{sign}{int(hours)}:{int(minutes):02d}:{secs:04.1f}"

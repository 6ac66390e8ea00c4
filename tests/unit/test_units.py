"""Durations and sizes are written the way operators write them (docs/CONFIGURATION.md, how
values are written)."""

from __future__ import annotations

import pytest

from recoveryd.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("4h", 14400.0),
        ("1h30m", 5400.0),
        ("200ms", 0.2),
        (15, 15.0),
        ("2d", 172800.0),
    ],
)
def test_durations_are_read_as_written(text: str | int, seconds: float) -> None:
    """`30s`, `4h`, `1h30m`, `200ms` and bare numbers are durations in seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "4 hours", "h4", "-5", True, -1])
def test_bad_durations_say_how_to_write_one(text: str | int) -> None:
    """A malformed duration is refused with a sentence showing the accepted form."""
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("200MiB/s", 200 * 1024**2),
        ("1.5GB", 1_500_000_000),
        ("512", 512),
        (64, 64),
        ("4 KiB", 4096),
    ],
)
def test_sizes_and_rates_are_read_as_written(text: str | int, size: int) -> None:
    """Sizes accept SI and binary units and an optional `/s` for rates."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "12XB", True, -3])
def test_bad_sizes_are_refused(text: str | int) -> None:
    """A malformed size is refused with a sentence showing the accepted form."""
    with pytest.raises(ValueError, match=r"size|negative"):
        parse_size(text)


def test_human_formats_are_short() -> None:
    """Operators read sizes and ages in short binary units and h/m/s forms."""
    assert format_size(512) == "512 B"
    assert format_size(3 * 1024 * 1024 + 400_000) == "3.4 MiB"
    assert format_duration(0.85) == "850ms"
    assert format_duration(187) == "3m07s"
    assert format_duration(4 * 3600) == "4h00m"
    assert format_duration(3 * 86400 + 3 * 3600) == "3d03h"

"""Localised dates and durations, the two catalogs, and secret redaction."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime

import pytest

from recoveryd.reports import i18n
from recoveryd.reports._messages_en import EN
from recoveryd.reports._messages_zh import ZH
from recoveryd.secrets import Redactor

T = datetime(2026, 11, 23, 15, 1, 2, tzinfo=UTC)


def test_dates_read_naturally_in_each_language() -> None:
    """zh: 2026年11月23日 15:01:02; en: 23 Nov 2026 15:01:02 (the report states the time zone
    once); in Asia/Shanghai the same instant is 23:01:02."""
    assert i18n.format_datetime(T, "zh") == "2026年11月23日 15:01:02"
    assert i18n.format_datetime(T, "en") == "23 Nov 2026 15:01:02"
    shanghai = i18n.zone("Asia/Shanghai")
    assert i18n.format_datetime(T, "en", shanghai) == "23 Nov 2026 23:01:02"
    assert i18n.format_date(date(2026, 12, 7), "zh") == "2026年12月7日"
    assert i18n.format_date(date(2026, 12, 7), "en") == "7 Dec 2026"


@pytest.mark.parametrize(
    ("seconds", "en", "zh"),
    [
        (7.2, "7.2 s", "7.2秒"),
        (42.0, "42 s", "42秒"),
        (95.4, "1 min 35 s", "1分35秒"),
        (4 * 3600, "4 h 00 min", "4小时00分"),
        (3 * 86400 + 7200, "3 d 2 h", "3天2小时"),
    ],
)
def test_durations_read_naturally_in_each_language(seconds: float, en: str, zh: str) -> None:
    """Durations use the reader's units, never raw seconds."""
    assert i18n.format_duration(seconds, "en") == en
    assert i18n.format_duration(seconds, "zh") == zh


def test_both_catalogs_translate_every_message_with_the_same_placeholders() -> None:
    """No message is missing in either language, and each keeps the same parameters."""
    assert set(EN) == set(ZH)
    fields = string.Formatter()
    for key in EN:
        en = {f for _, f, _, _ in fields.parse(EN[key]) if f}
        zh = {f for _, f, _, _ in fields.parse(ZH[key]) if f}
        assert en == zh, key


def test_unknown_language_is_refused() -> None:
    """Only en and zh exist; anything else is an error, not a silent fallback."""
    with pytest.raises(ValueError, match="unknown report language"):
        i18n.catalog("fr")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://dr:s3cr3t@db:5432/x", "postgresql://dr:***@db:5432/x"),
        ("host=db password=abc123 user=dr", "host=db password=*** user=dr"),
        ("PGPASSWORD=abc123 pg_dump", "PGPASSWORD=*** pg_dump"),
        ("password='two words'", "password='***'"),
        ('{"password": "abc123"}', '{"password": "***"}'),
        ("Authorization: Bearer eyJhbGci", "Authorization: Bearer ***"),
        ("aws_secret_access_key = AbCdEf123", "aws_secret_access_key = ***"),
        ("mysql://backup@db2:3306/legal", "mysql://backup@db2:3306/legal"),
        ("GET http://127.0.0.1:8080/healthz 200", "GET http://127.0.0.1:8080/healthz 200"),
    ],
)
def test_known_secret_patterns_are_masked(text: str, expected: str) -> None:
    """DSN and URI passwords, password= settings, tokens and auth headers are masked; URLs
    without a password are left alone."""
    assert Redactor()(text) == expected


def test_values_passed_in_are_masked_anywhere() -> None:
    """A resolved secret is masked wherever it appears, even without a telltale key."""
    assert Redactor().with_values(["Zq8-vault"])("got Zq8-vault back") == "got *** back"

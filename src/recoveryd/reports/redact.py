"""Secret redaction for everything a report shows.

Applied twice: when the report model is built from recorded data, and again by
every renderer on every value it writes (a journal written by an older version,
or a value that slipped through, still never reaches the page).
Known patterns: passwords in URL DSNs (`scheme://user:secret@host`), key=value
settings whose key names a secret (`password=`, `PGPASSWORD=`, `token=`...),
`Authorization:` headers, and any literal value passed in; `recoveryd.reports`
also applies the process-wide redactor of `recoveryd.secrets` (every secret
resolved in this process, e.g. by a drill run that renders its own report).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MASK = "***"

_SENSITIVE_NAME = (
    r"(?:[A-Za-z_]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key|credential)s?)"
)
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # scheme://user:password@host
    re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?P<post>@)"),
    # "password": "value" (JSON-ish)
    re.compile(rf"(?P<pre>[\"']{_SENSITIVE_NAME}[\"']\s*:\s*[\"'])[^\"']*(?P<post>[\"'])", re.I),
    # password='quoted value' / password="quoted value"
    re.compile(rf"(?P<pre>\b{_SENSITIVE_NAME}\s*[=:]\s*(?P<q>[\"']))[^\"']*(?P<post>(?P=q))", re.I),
    # password=value, PGPASSWORD=value, token: value
    re.compile(rf"(?P<pre>\b{_SENSITIVE_NAME}\s*[=:]\s*)(?![\"'*])[^\s,;&\"']+(?P<post>)", re.I),
    # Authorization: Bearer xyz
    re.compile(r"(?P<pre>\bAuthorization\s*[:=]\s*(?:\w+\s+)?)[^\s,;\"']+(?P<post>)", re.I),
)


@dataclass(frozen=True)
class Redactor:
    """Masks known secret patterns and the literal `values` (shorter than 4 chars are ignored)."""

    values: tuple[str, ...] = field(default_factory=tuple)
    also: Callable[[str], str] | None = None  # e.g. the process-wide redactor of resolved secrets

    @classmethod
    def with_values(
        cls, values: Iterable[str], *, also: Callable[[str], str] | None = None
    ) -> Redactor:
        kept = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)
        return cls(tuple(kept), also)

    def __call__(self, text: str) -> str:
        out = self.also(text) if self.also is not None else text
        for value in self.values:
            out = out.replace(value, MASK)
        for pattern in _PATTERNS:
            out = pattern.sub(_mask, out)
        return out


def _mask(match: re.Match[str]) -> str:
    return f"{match.group('pre')}{MASK}{match.group('post')}"

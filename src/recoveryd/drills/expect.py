"""`expect`: what a probe's result must look like.

- absent: the probe succeeded (exit 0, query ran, HTTP 2xx);
- `true`/`false`: the result read as a boolean (`t`, `true`, `1`, `yes`...);
- a number: numeric equality;
- `">= 1000"`, `"< 5"`, `"== 3"`, `"!= 0"`: numeric comparison;
- `"~ pattern"`: a regular-expression search;
- any other string: equality with the result (surrounding whitespace ignored);
- a mapping (HTTP): `status`, `body`, `json: {"$.path.to[0].field": <expect>}`,
  `headers: {Name: <expect>}`; for commands: `exit`, `stdout`, `stderr`.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_COMPARE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_TRUE = {"t", "true", "1", "yes", "y", "on"}
_FALSE = {"f", "false", "0", "no", "n", "off", ""}
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[\"([^\"]+)\"\]|\['([^']+)'\]")
MAPPING_KEYS = frozenset({"status", "body", "json", "headers", "exit", "stdout", "stderr"})


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str  # "got 17, expected >= 1000"


def check_syntax(expect: Any) -> str | None:
    """None when `expect` is well formed, else a sentence saying what is wrong."""
    if isinstance(expect, dict):
        for key, sub in expect.items():
            if key not in MAPPING_KEYS:
                return f'unknown expectation "{key}"; use {", ".join(sorted(MAPPING_KEYS))}'
            if key in ("json", "headers"):
                if not isinstance(sub, dict):
                    return f"{key} expects a mapping of path to expectation"
                for path, inner in sub.items():
                    if key == "json" and parse_json_path(str(path)) is None:
                        return f'"{path}" is not a JSON path; write it like $.data.items[0].id'
                    problem = check_syntax(inner)
                    if problem:
                        return problem
            else:
                problem = check_syntax(sub)
                if problem:
                    return problem
        return None
    if isinstance(expect, str) and expect.startswith("~"):
        try:
            re.compile(expect[1:].strip())
        except re.error as exc:
            return f"invalid regular expression: {exc}"
    return None


def matches(expect: Any, value: str) -> Verdict:
    """Compare one scalar result with a scalar expectation."""
    text = value.strip()
    if expect is None:
        return Verdict(True, "")
    if isinstance(expect, bool):
        low = text.lower()
        got = True if low in _TRUE else False if low in _FALSE else None
        return Verdict(got is expect, f"got {_short(text)!r}, expected {str(expect).lower()}")
    if isinstance(expect, int | float):
        num = _number(text)
        return Verdict(
            num is not None and num == expect, f"got {_short(text)!r}, expected {expect}"
        )
    if isinstance(expect, str):
        m = _COMPARE.match(expect)
        if m:
            num = _number(text)
            ok = num is not None and _OPS[m.group(1)](num, float(m.group(2)))
            return Verdict(ok, f"got {_short(text)!r}, expected {expect.strip()}")
        if expect.startswith("~"):
            pattern = expect[1:].strip()
            ok = re.search(pattern, value) is not None
            return Verdict(ok, f"got {_short(text)!r}, expected to match /{pattern}/")
        return Verdict(text == expect.strip(), f"got {_short(text)!r}, expected {expect!r}")
    return Verdict(False, f"cannot compare with {expect!r}")


def check_mapping(expect: Mapping[str, Any], fields: Mapping[str, str]) -> Verdict:
    """Check an expectation mapping against named result fields (status, body, exit...)."""
    for key, sub in expect.items():
        if key == "json":
            try:
                doc = json.loads(fields.get("body", ""))
            except json.JSONDecodeError:
                return Verdict(False, "the body is not JSON")
            for path, inner in sub.items():
                found, value = lookup(doc, str(path))
                if not found:
                    return Verdict(False, f"{path}: not in the body")
                text = value if isinstance(value, str) else json.dumps(value)
                verdict = matches(inner, text)
                if not verdict.ok:
                    return Verdict(False, f"{path}: {verdict.detail}")
        elif key == "headers":
            for name, inner in sub.items():
                verdict = matches(inner, fields.get(f"header:{str(name).lower()}", ""))
                if not verdict.ok:
                    return Verdict(False, f"header {name}: {verdict.detail}")
        else:
            verdict = matches(sub, fields.get(key, ""))
            if not verdict.ok:
                return Verdict(False, f"{key}: {verdict.detail}")
    return Verdict(True, "")


def parse_json_path(path: str) -> list[str | int] | None:
    """`$.a.b[0]["c d"]` -> ["a", "b", 0, "c d"]; None when malformed."""
    if not path.startswith("$"):
        return None
    out: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _PATH_PART.match(path, pos)
        if not m:
            return None
        if m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append(next(g for g in (m.group(1), m.group(3), m.group(4)) if g is not None))
        pos = m.end()
    return out


def lookup(doc: Any, path: str) -> tuple[bool, Any]:
    parts = parse_json_path(path)
    if parts is None:
        return False, None
    node = doc
    for part in parts:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):  # noqa: SIM114
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."

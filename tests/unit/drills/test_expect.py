"""`expect`: equality, numeric comparisons, regular expressions, booleans, JSON paths."""

from __future__ import annotations

import json

import pytest

from recoveryd.drills.expect import check_mapping, check_syntax, lookup, matches


@pytest.mark.parametrize(
    ("expect", "value", "ok"),
    [
        ("streaming", "streaming\n", True),
        ("streaming", "stopped", False),
        (">= 1000", "1000", True),
        (">= 1000", "999", False),
        ("< 5", "4.5", True),
        ("!= 0", "0", False),
        ("== 3", "3.0", True),
        (">= 10", "not a number", False),
        ("~ ^HTTP/1\\.[01] 200", "HTTP/1.1 200 OK", True),
        ("~ ^ok$", "not ok", False),
        (True, "t", True),
        (True, "true", True),
        (True, "f", False),
        (False, "0", True),
        (42, "42", True),
        (42, "41", False),
        (None, "anything", True),
    ],
)
def test_scalar_expectations(expect: object, value: str, ok: bool) -> None:
    """Scalar expectations compare a probe's result as the playbook author means them."""
    assert matches(expect, value).ok is ok


def test_failed_match_says_what_was_got_and_expected() -> None:
    """A failed expectation explains itself with the value and the expectation."""
    verdict = matches(">= 1000000", "17")
    assert verdict.detail == "got '17', expected >= 1000000"


def test_http_mapping_with_status_and_json_paths() -> None:
    """HTTP expectations check status codes and values at JSON paths in the body."""
    body = json.dumps({"status": "up", "nodes": [{"name": "a", "lag": 0.4}], "weird key": 1})
    fields = {"status": "200", "body": body, "header:content-type": "application/json"}
    expect = {
        "status": 200,
        "json": {"$.status": "up", "$.nodes[0].lag": "< 1", '$["weird key"]': 1},
        "headers": {"Content-Type": "~ json"},
    }
    assert check_mapping(expect, fields).ok
    bad = check_mapping({"json": {"$.nodes[0].lag": "< 0.1"}}, fields)
    assert not bad.ok
    assert "$.nodes[0].lag" in bad.detail
    missing = check_mapping({"json": {"$.nodes[3].name": "a"}}, fields)
    assert "not in the body" in missing.detail


def test_json_path_lookup() -> None:
    """JSON paths reach into objects and arrays; a missing element is reported as missing."""
    doc = {"a": {"b": [10, {"c": "x"}]}}
    assert lookup(doc, "$.a.b[1].c") == (True, "x")
    assert lookup(doc, "$.a.b[5]") == (False, None)


@pytest.mark.parametrize(
    "expect",
    [{"colour": 1}, {"json": {"no-dollar": 1}}, "~ (", {"json": ["$.a"]}],
)
def test_malformed_expectations_are_reported(expect: object) -> None:
    """Malformed expectations are caught when the playbook is validated."""
    assert check_syntax(expect) is not None

"""`http`: one request with urllib; `expect` checks status, body, JSON paths, headers.

A connection that fails has the status `unreachable`, so `expect: {status:
unreachable}` can wait for a service to be gone."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request

from recoveryd.drills.expect import check_mapping, matches
from recoveryd.drills.models import HttpRequest
from recoveryd.drills.steps.base import Outcome, StepContext

BODY_LIMIT = 1024 * 1024


def fetch(req: HttpRequest, timeout: float) -> dict[str, str]:
    """Fields of the response: status, body, header:<lower name>. OSError when unreachable."""
    data = req.body.encode() if req.body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the URL scheme is validated as http(s)
        req.url, data=data, method=req.method, headers=dict(req.headers)
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            status, body, headers = resp.status, resp.read(BODY_LIMIT), resp.headers
    except urllib.error.HTTPError as exc:
        status, body, headers = exc.code, exc.read(BODY_LIMIT), exc.headers
    fields = {"status": str(status), "body": body.decode(errors="replace")}
    for name, value in headers.items():
        fields[f"header:{name.lower()}"] = value
    return fields


def run_http(ctx: StepContext, *, req: HttpRequest, expect: object, timeout: float) -> Outcome:
    del ctx
    try:
        fields = fetch(req, min(timeout, req.timeout))
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # HTTPException: a server that answers something other than HTTP (BadStatusLine...)
        reason = f"{req.method} {req.url}: {getattr(exc, 'reason', exc) or type(exc).__name__}"
        if isinstance(expect, dict) and "status" in expect:
            # `expect: {status: unreachable}` waits for a service to be gone
            verdict = check_mapping(expect, {"status": "unreachable", "body": ""})
            return Outcome("ok", reason) if verdict.ok else Outcome("failed", "", reason)
        return Outcome("failed", "", reason)
    output = f"HTTP {fields['status']}\n{fields['body']}"
    if isinstance(expect, dict):
        verdict = check_mapping(expect, fields)
    elif expect is None:
        ok = fields["status"].startswith(("2", "3"))
        return (
            Outcome("ok", output) if ok else Outcome("failed", output, f"HTTP {fields['status']}")
        )
    else:
        verdict = matches(expect, fields["body"])
    return Outcome("ok", output) if verdict.ok else Outcome("failed", output, verdict.detail)

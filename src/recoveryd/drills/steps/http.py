"""The `http` kind: one request with urllib; `expect` checks status, body, JSON paths, headers.

A connection that fails has the status `unreachable`, so `expect: {status:
unreachable}` can wait for a service to be gone."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import ClassVar, Literal

from pydantic import Field

from recoveryd.configtypes import HttpUrl, PositiveDuration
from recoveryd.drills.expect import check_mapping, matches
from recoveryd.drills.steps.base import DEFAULT_TIMEOUT, Outcome, StepContext
from recoveryd.drills.steps.schema import Model, StepBase, StepKind

BODY_LIMIT = 1024 * 1024


class HttpRequest(Model):
    url: HttpUrl
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    timeout: PositiveDuration = 10.0


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


class HttpStep(StepBase):
    kind: ClassVar[str] = "http"
    http: HttpRequest

    def http_requests(self) -> list[HttpRequest]:
        return [self.http]


def run_step(step: HttpStep, ctx: StepContext, timeout: float | None) -> Outcome:
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT
    return run_http(ctx, req=step.http, expect=step.expect, timeout=limit)


def describe_step(step: HttpStep) -> str:
    return f"{step.http.method} {step.http.url}"


KIND = StepKind(HttpStep, run_step, describe_step, probe=True)

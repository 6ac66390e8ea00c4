"""Alerts to a real HTTP server and a real SMTP server on loopback, through the durable spool."""

from __future__ import annotations

from pathlib import Path

import pytest

from recoveryd.config import EmailNotify, WebhookNotify
from recoveryd.daemon.notify import Alert, Notifier
from tests.fixtures.web import HttpRecorder, SmtpServer

pytestmark = pytest.mark.integration

FAILURE = Alert("failure", "backup of pop failed", "pg_dump: connection refused", source="pop")


def _hook(
    rec: HttpRecorder, fmt: str = "json", on: tuple[str, ...] = ("failure",)
) -> WebhookNotify:
    return WebhookNotify(kind="webhook", url=rec.url + "/hook", format=fmt, on=list(on))  # type: ignore[arg-type]


def test_webhook_gets_a_json_post(tmp_path: Path, http_recorder: HttpRecorder) -> None:
    """A failure is POSTed as JSON with the event, the source and the text; the spool empties."""
    n = Notifier([_hook(http_recorder)], tmp_path / "spool")
    assert n.notify(FAILURE) == 1
    n.flush()
    (req,) = http_recorder.received("/hook")
    assert req.method == "POST" and req.headers["Content-Type"].startswith("application/json")
    body = req.json()
    assert (body["event"], body["source"], body["text"]) == ("failure", "pop", FAILURE.text)
    assert n.pending() == []


@pytest.mark.parametrize(
    ("fmt", "path"),
    [
        ("wecom", ("text", "content")),
        ("dingtalk", ("text", "content")),
        ("feishu", ("content", "text")),
    ],
)
def test_enterprise_im_formats(
    tmp_path: Path, http_recorder: HttpRecorder, fmt: str, path: tuple[str, str]
) -> None:
    """WeCom, DingTalk and Feishu robots get their own text-message shape."""
    n = Notifier([_hook(http_recorder, fmt)], tmp_path / "spool")
    n.notify(FAILURE)
    n.flush()
    body = http_recorder.received("/hook")[0].json()
    assert "backup of pop failed" in body[path[0]][path[1]]


def test_only_subscribed_events_are_sent(tmp_path: Path, http_recorder: HttpRecorder) -> None:
    """A channel gets the kinds listed in its `on` only."""
    n = Notifier([_hook(http_recorder, on=("overdue",))], tmp_path / "spool")
    assert n.notify(FAILURE) == 0


def test_email_through_smtp(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """An email alert is accepted by a real SMTP server, with the subject naming the problem."""
    mail = EmailNotify(kind="email", to=["duty@example.gov.cn"], smtp=smtp_server.address)
    n = Notifier([mail], tmp_path / "spool")
    n.notify(FAILURE)
    n.flush()
    (msg,) = smtp_server.wait_for(1)
    assert msg["To"] == "duty@example.gov.cn"
    assert "backup of pop failed" in msg["Subject"]
    assert "connection refused" in msg.get_content()


def test_undeliverable_alert_is_spooled_retried_with_backoff_and_survives_restart(
    tmp_path: Path, http_recorder: HttpRecorder
) -> None:
    """With the webhook down the alert stays in the spool with a growing delay; a new
    notifier (the daemon restarted, same channels configured) delivers it once the server
    is back."""
    now = [1000.0]
    n = Notifier([_hook(http_recorder)], tmp_path / "spool", backoff_base=2.0, clock=lambda: now[0])
    http_recorder.down()
    n.notify(FAILURE)
    assert n.flush() == 1002.0
    now[0] = 1002.0
    assert n.flush() == 1006.0  # 2s, then 4s
    assert n.flush() == 1006.0  # not due yet: no attempt
    assert len(n.pending()) == 1
    http_recorder.up()
    restarted = Notifier([_hook(http_recorder)], tmp_path / "spool", clock=lambda: now[0])
    now[0] = 1006.0
    assert restarted.flush() is None
    assert len(http_recorder.received("/hook")) == 1
    assert restarted.pending() == []


def test_background_delivery(tmp_path: Path, http_recorder: HttpRecorder) -> None:
    """Started, the notifier delivers on its own thread: a job never waits for a webhook."""
    n = Notifier([_hook(http_recorder)], tmp_path / "spool")
    n.start()
    try:
        n.notify(FAILURE)
        assert len(http_recorder.wait_for(1, "/hook")) == 1
    finally:
        n.stop()


def test_full_spool_drops_the_oldest_and_says_so(
    tmp_path: Path, http_recorder: HttpRecorder
) -> None:
    """The spool is bounded: the oldest alerts go, and the drop is counted and reported."""
    drops: list[int] = []
    n = Notifier([_hook(http_recorder)], tmp_path / "spool", max_spool=3, on_drop=drops.append)
    http_recorder.down()
    for i in range(5):
        n.notify(Alert("failure", f"alert {i}", "x"))
    assert len(n.pending()) == 3 and n.dropped == 2 and sum(drops) == 2
    http_recorder.up()
    n.flush()
    assert n.pending() == []
    subjects = [r.json()["subject"] for r in http_recorder.received("/hook")]
    assert subjects == ["alert 2", "alert 3", "alert 4"]


def test_the_spool_keeps_no_secret_of_its_channels(
    tmp_path: Path, http_recorder: HttpRecorder
) -> None:
    """A webhook URL's credentials and token never reach the spool files; delivery still
    uses the configured URL with them (the credentials as HTTP Basic authentication)."""
    url = http_recorder.url.replace("://", "://robot:Spool-Pw-4411@") + "/hook?key=Spool-Key-8822"
    hook = WebhookNotify(kind="webhook", url=url)
    now = [1000.0]
    n = Notifier([hook], tmp_path / "spool", clock=lambda: now[0])
    http_recorder.down()
    n.notify(FAILURE)
    n.flush()
    now[0] = 2000.0
    spooled = b"".join(p.read_bytes() for p in (tmp_path / "spool").iterdir())
    assert b"Spool-Pw-4411" not in spooled and b"Spool-Key-8822" not in spooled
    http_recorder.up()
    n.flush()
    (req,) = http_recorder.received()
    assert "key=Spool-Key-8822" in req.path
    assert req.headers["Authorization"] == "Basic cm9ib3Q6U3Bvb2wtUHctNDQxMQ=="

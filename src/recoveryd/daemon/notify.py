"""Notifications: webhook (JSON, WeCom, DingTalk, Feishu) and email, through a durable spool.

Every alert is first written to `state_dir/spool/` (one file per alert and
channel, written atomically), then delivered by a background thread; a file
is removed only once its channel accepted it. Failed deliveries are retried
with exponential backoff, across restarts of the daemon. The spool is
bounded: when full, the oldest alerts are dropped, and the drop is logged and
counted (`on_drop`), never silent. A spooled alert names its channel by a key
and keeps no secret of it (webhook URL tokens, SMTP password): delivery uses
the channel as configured.
"""

from __future__ import annotations

import base64
import hashlib
import json
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from recoveryd.atomic import write_atomic
from recoveryd.config import EmailNotify, Notify, WebhookNotify
from recoveryd.errors import RecoverydError
from recoveryd.observe import get_logger
from recoveryd.secrets import redact, redact_tree
from recoveryd.state import iso, utcnow

log = get_logger(__name__)
_CHANNEL = TypeAdapter[WebhookNotify | EmailNotify](Notify)


class DeliveryError(RecoverydError):
    """A channel did not accept an alert (connection refused, HTTP error, SMTP error)."""

    transient = True


@dataclass(frozen=True)
class Alert:
    """What happened, in words an operator on duty reads on a phone."""

    kind: str  # failure | overdue | recovery | shed | rpo_override | drill
    subject: str
    text: str
    source: str | None = None
    time: str = field(default_factory=lambda: iso(utcnow()))
    host: str = field(default_factory=socket.gethostname)
    details: Mapping[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        return f"[recoveryd@{self.host}] {self.subject}\n{self.text}"


def webhook_body(fmt: str, alert: Alert) -> dict[str, Any]:
    """The JSON body for a webhook format (plain JSON or an enterprise IM robot)."""
    if fmt in ("wecom", "dingtalk"):
        return {"msgtype": "text", "text": {"content": alert.message()}}
    if fmt == "feishu":
        return {"msg_type": "text", "content": {"text": alert.message()}}
    return {"event": alert.kind, **{k: v for k, v in asdict(alert).items() if k != "kind"}}


def deliver(
    channel: WebhookNotify | EmailNotify,
    alert: Alert,
    *,
    timeout: float = 10.0,
    password: str | None = None,
) -> None:
    """Deliver one alert to one channel; DeliveryError when it was not accepted.

    `password` is the resolved SMTP password of an email channel with a `user`."""
    if isinstance(channel, WebhookNotify):
        _post(channel, alert, timeout)
    else:
        _mail(channel, alert, timeout, password)


def _post(channel: WebhookNotify, alert: Alert, timeout: float) -> None:
    if not channel.url.startswith(("http://", "https://")):
        raise DeliveryError(f"notify webhook {redact(channel.url)}: not an http(s) URL")
    body = json.dumps(webhook_body(channel.format, alert), ensure_ascii=False).encode()
    url, auth = _split_credentials(channel.url)
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "recoveryd"}
    if auth:
        headers["Authorization"] = auth
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            resp.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(
            f"notify webhook {redact(channel.url)}: answered HTTP {exc.code}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(
            f"notify webhook {redact(channel.url)}: unreachable ({reason})"
        ) from exc


def _split_credentials(url: str) -> tuple[str, str | None]:
    """`https://user:pw@host/...` -> the URL without them and a Basic Authorization value
    (urllib would take `user:pw@host` for a host name)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


def _mail(channel: EmailNotify, alert: Alert, timeout: float, password: str | None) -> None:
    host, _, port = channel.smtp.rpartition(":")
    if not host:
        host, port = channel.smtp, "25"
    msg = EmailMessage()
    msg["Subject"] = f"[recoveryd] {alert.subject}"
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    msg.set_content(alert.message())
    try:
        with smtplib.SMTP(host, int(port), timeout=timeout) as smtp:
            if channel.starttls:
                smtp.starttls()
            if channel.user and password is not None:
                smtp.login(channel.user, password)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        raise DeliveryError(
            redact(f"notify email via {channel.smtp}: not accepted ({exc})")
        ) from exc


class Notifier:
    """Spools alerts and delivers them in the background, with backoff."""

    def __init__(
        self,
        channels: Sequence[WebhookNotify | EmailNotify],
        spool_dir: Path,
        *,
        max_spool: int = 1000,
        backoff_base: float = 2.0,
        backoff_max: float = 600.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        on_drop: Callable[[int], None] | None = None,
        on_delivered: Callable[[str], None] | None = None,
        secret: Callable[[str], str] | None = None,
    ) -> None:
        self.channels = list(channels)
        self.secret = secret  # resolves an email channel's password reference
        self.spool = spool_dir
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.max_spool = max_spool
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.clock = clock
        self.on_drop = on_drop
        self.on_delivered = on_delivered
        self.dropped = 0
        self.delivered = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_channels(self, channels: Sequence[WebhookNotify | EmailNotify]) -> None:
        self.channels = list(channels)

    def notify(self, alert: Alert) -> int:
        """Spool `alert` for every channel subscribed to its kind; returns how many."""
        alert = replace(alert, subject=redact(alert.subject), text=redact(alert.text))
        count = 0
        for channel in self.channels:
            if alert.kind not in channel.on:
                continue
            entry = {
                "alert": asdict(alert),
                # the channel without its secrets; delivery takes the configured one
                "channel": redact_tree(channel.model_dump(mode="json")),
                "channel_key": _channel_key(channel),
                "attempts": 0,
                "next_try": 0.0,
                "last_error": None,
            }
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.json"
            write_json_atomic(self.spool / name, entry)
            count += 1
        if count:
            self._bound()
            self._wake.set()
        return count

    def pending(self) -> list[Path]:
        """Spooled alert files, oldest first."""
        return sorted(p for p in self.spool.glob("*.json") if p.is_file())

    def _bound(self) -> None:
        with self._lock:
            files = self.pending()
            excess = len(files) - self.max_spool
            if excess <= 0:
                return
            for path in files[:excess]:
                path.unlink(missing_ok=True)
            self.dropped += excess
        log.warning(
            "notify_spool_full",
            dropped=excess,
            dropped_total=self.dropped,
            limit=self.max_spool,
            note="the oldest undelivered alerts were dropped",
        )
        if self.on_drop is not None:
            self.on_drop(excess)

    def flush(self) -> float | None:
        """Try every due alert once; returns the time the next one is due (None: spool empty)."""
        next_due: float | None = None
        for path in self.pending():
            if self._stop.is_set() and self._thread is not None:
                break
            due = self._try(path)
            if due is not None:
                next_due = due if next_due is None else min(next_due, due)
        return next_due

    def _try(self, path: Path) -> float | None:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            channel = self._channel(entry)
            alert = Alert(**entry["alert"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            log.error("notify_spool_unreadable", file=path.name, error=str(exc))
            path.rename(path.with_suffix(".bad"))
            return None
        now = self.clock()
        next_try = float(entry.get("next_try", 0.0))
        if next_try > now:
            return next_try
        try:
            deliver(channel, alert, timeout=self.timeout, password=self._password(channel))
        except DeliveryError as exc:
            attempts = int(entry.get("attempts", 0)) + 1
            delay = min(self.backoff_max, self.backoff_base * 2.0 ** (attempts - 1))
            entry.update(attempts=attempts, next_try=now + delay, last_error=exc.message)
            write_json_atomic(path, entry)
            log.warning(
                "notify_deferred",
                kind=alert.kind,
                error=exc.message,
                attempts=attempts,
                retry_in=delay,
            )
            return now + delay
        path.unlink(missing_ok=True)
        self.delivered += 1
        log.info("notify_delivered", kind=alert.kind, channel=channel.kind, source=alert.source)
        if self.on_delivered is not None:
            self.on_delivered(alert.kind)
        return None

    def _channel(self, entry: Mapping[str, Any]) -> WebhookNotify | EmailNotify:
        """The configured channel a spooled alert is for (the spool keeps no secret)."""
        key = entry.get("channel_key")
        for channel in self.channels:
            if key == _channel_key(channel):
                return channel
        if key is not None:
            raise KeyError("its channel is no longer configured")
        return _CHANNEL.validate_python(entry["channel"])

    def _password(self, channel: WebhookNotify | EmailNotify) -> str | None:
        if not isinstance(channel, EmailNotify) or channel.password is None:
            return None
        if self.secret is None:
            raise DeliveryError(f"notify email via {channel.smtp}: no way to read its password")
        try:
            return self.secret(channel.password)
        except RecoverydError as exc:
            raise DeliveryError(exc.message) from None

    def start(self) -> None:
        """Deliver in a background thread (spooled alerts from before a restart included)."""
        self._thread = threading.Thread(target=self._loop, name="notify", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                next_due = self.flush()
            except OSError as exc:  # a full or read-only state dir: keep trying later
                log.error("notify_spool_error", error=str(exc))
                next_due = self.clock() + self.backoff_max
            wait = None if next_due is None else max(0.05, next_due - self.clock())
            self._wake.wait(wait if wait is not None else 3600.0)
            self._wake.clear()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """`document` as JSON, written atomically (mode 0640): a crash leaves the old or the
    new file."""
    data = json.dumps(document, ensure_ascii=False, default=str).encode()
    write_atomic(path, data, mode=0o640)


def _channel_key(channel: WebhookNotify | EmailNotify) -> str:
    """Names a configured channel without revealing its secrets."""
    body = json.dumps(redact_tree(channel.model_dump(mode="json")), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def governor_alert(kind: str, data: Mapping[str, Any]) -> Alert:
    """The alert of a load governor event: a level change (shed) or an RPO override."""
    if kind == "shed":
        subject = f"load level {data.get('from')} -> {data.get('to')}"
        text = "Reasons: " + ("; ".join(map(str, data.get("reasons") or [])) or "none")
    else:
        subject = f"{kind.replace('_', ' ')} {data.get('job', '')}".strip()
        text = ", ".join(f"{k}={v}" for k, v in sorted(data.items()))
    return Alert(kind, subject, text, details=dict(data))

"""Anchors: the heads of the local hash-chained logs, keyed and kept off the host.

An anchor (docs/FORMAT.md, "Log anchors") records, for every chained log under
`state_dir` — `audit.jsonl`, `drills/RUN_ID/journal.jsonl`, `incidents/INC-*.jsonl` —
how many records it had and the hash of the last one, plus an HMAC-SHA256 over the
whole document with a key derived from the master key (HKDF, info
`recoveryd/v1/anchor-mac`). It is stored in every target (under Object Lock where
the store enforces it), so that truncating, deleting or rewriting a local log is
noticed even though whoever did it held the files: `compare` tells the three apart, and
records appended after the newest anchor are only "not yet anchored".

Pure: nothing here talks to a store; `recoveryd.app.anchors` does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from recoveryd.chain import HashChain

ANCHOR_PREFIX = "anchors/"
FORMAT = "recoveryd-anchor-v1"
_INFO = b"recoveryd/v1/anchor-mac"


def anchor_key(master_secret: bytes) -> bytes:
    """The HMAC key of anchors, derived from the master key's 32 bytes."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(master_secret)


@dataclass(frozen=True)
class Head:
    records: int
    head: str


def local_logs(state_dir: Path) -> list[Path]:
    """Every chained log under `state_dir`, as paths relative to it."""
    found = [Path("audit.jsonl")] if (state_dir / "audit.jsonl").is_file() else []
    found += sorted(p.relative_to(state_dir) for p in state_dir.glob("drills/*/journal.jsonl"))
    found += sorted(p.relative_to(state_dir) for p in state_dir.glob("incidents/*.jsonl"))
    return found


def local_heads(state_dir: Path) -> dict[str, Head]:
    """Record count and last hash of every chained log (of its intact prefix)."""
    heads: dict[str, Head] = {}
    for rel in local_logs(state_dir):
        status = HashChain(state_dir / rel).verify()
        heads[rel.as_posix()] = Head(status.records, status.head)
    return heads


def seal(key: bytes, host: str, time: datetime, heads: Mapping[str, Head]) -> bytes:
    """The bytes of an anchor object."""
    body = {
        "format": FORMAT,
        "host": host,
        "time": time.isoformat(timespec="microseconds"),
        "logs": {k: {"records": h.records, "head": h.head} for k, h in sorted(heads.items())},
    }
    doc = {**body, "mac": _mac(key, body)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def object_name(host: str, time: datetime, heads: Mapping[str, Head]) -> str:
    """`anchors/<host>/<UTC time>-<digest>`: sorts by time, never overwritten."""
    digest = hashlib.sha256(json.dumps(sorted((k, h.head) for k, h in heads.items())).encode())
    stamp = time.strftime("%Y%m%dT%H%M%S%fZ")
    return f"{ANCHOR_PREFIX}{host}/{stamp}-{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class Anchor:
    name: str
    host: str
    time: str
    logs: dict[str, Head]


class AnchorError(Exception):
    """An anchor object that does not parse or whose MAC does not match (forged, damaged)."""


def parse(key: bytes, name: str, blob: bytes) -> Anchor:
    """An anchor object read back; AnchorError when it is not authentic."""
    try:
        doc = json.loads(blob)
        body = {k: v for k, v in doc.items() if k != "mac"}
        if doc.get("format") != FORMAT:
            raise AnchorError(f"anchor {name}: not a {FORMAT} object")
        if not hmac.compare_digest(str(doc.get("mac")), _mac(key, body)):
            raise AnchorError(f"anchor {name}: its MAC does not match (forged or damaged)")
        logs = {
            str(k): Head(int(v["records"]), str(v["head"])) for k, v in dict(doc["logs"]).items()
        }
        return Anchor(name, str(doc["host"]), str(doc["time"]), logs)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AnchorError(f"anchor {name}: not a readable anchor ({exc})") from None


@dataclass(frozen=True)
class Finding:
    log: str
    kind: str  # deleted | truncated | rewritten | unanchored
    text: str

    @property
    def tampered(self) -> bool:
        return self.kind != "unanchored"


def compare(anchor: Anchor, state_dir: Path, logs: Iterable[str]) -> list[Finding]:
    """What happened to each of `logs` (names relative to `state_dir`) since `anchor`."""
    out: list[Finding] = []
    for name in logs:
        then = anchor.logs.get(name)
        now = HashChain(state_dir / name).verify() if (state_dir / name).is_file() else None
        count = now.records if now is not None else 0
        if then is None:
            if count:
                out.append(Finding(name, "unanchored", _later(name, count, anchor)))
            continue
        if now is None or count == 0:
            text = f"{name}: deleted; the anchor of {anchor.time} holds {then.records} records"
            out.append(Finding(name, "deleted", text))
        elif count < then.records:
            text = (
                f"{name}: truncated to {count} records; the anchor of {anchor.time} "
                f"holds {then.records}"
            )
            out.append(Finding(name, "truncated", text))
        elif _hash_of(state_dir / name, then.records) != then.head:
            text = f"{name}: rewritten; its records differ from the anchor of {anchor.time}"
            out.append(Finding(name, "rewritten", text))
        elif count > then.records:
            out.append(Finding(name, "unanchored", _later(name, count - then.records, anchor)))
    return out


def _hash_of(path: Path, records: int) -> str | None:
    """The hash of record number `records` (1-based) of a chained log."""
    for seen, rec in enumerate(HashChain(path).records(), start=1):
        if seen == records:
            return str(rec.get("hash"))
    return None


def _later(name: str, count: int, anchor: Anchor) -> str:
    return f"{name}: {count} record(s) after the anchor of {anchor.time} not yet anchored"


def _mac(key: bytes, body: Mapping[str, object]) -> str:
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, data, "sha256").hexdigest()

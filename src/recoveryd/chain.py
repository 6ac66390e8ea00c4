"""Append-only, hash-chained JSON-lines logs: drill journals, incident records, the audit log.

Each line is one JSON object with `seq` (0, 1, ...), `prev` (the previous
record's `hash`, or 64 zeros) and `hash` = SHA-256 of the canonical JSON of the
record without `hash` (sorted keys, no spaces, UTF-8). Editing, removing or
reordering any record breaks the chain, and `verify` says where.
Every record passes the one redactor (`recoveryd.secrets`) before it is
written: no chained log holds a secret. Appends are flushed and fsynced; a torn
last line (power loss mid-write) is reported by `verify` as such, never silently accepted.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recoveryd.secrets import redact_tree
from recoveryd.state import own_like_parent

GENESIS = "0" * 64


def canonical(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    records: int
    head: str  # hash of the last intact record
    problem: str | None = None  # "record 7: hash does not match its content" ...


class HashChain:
    """One chained log file. Thread-safe appends within a process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append `record` (any JSON-able mapping without seq/prev/hash); returns it completed."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            seq, prev = self._tail()
            full = {**redact_tree(record), "seq": seq, "prev": prev}
            full["hash"] = record_hash(full)
            line = json.dumps(full, ensure_ascii=False, sort_keys=True) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            if seq == 0:
                own_like_parent(self.path)
            return full

    def _tail(self) -> tuple[int, str]:
        last: dict[str, Any] | None = None
        for rec in self.records():
            last = rec
        if last is None:
            return 0, GENESIS
        return int(last["seq"]) + 1, str(last["hash"])

    def records(self) -> Iterator[dict[str, Any]]:
        """Every parseable record in file order (verification is separate).

        Bytes that are not UTF-8 (an edited file) are replaced rather than fatal,
        so that `verify` can report the edit."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except (ValueError, RecursionError):  # not JSON, or nested beyond reason
                    continue
                if isinstance(rec, dict):
                    yield rec

    def verify(self) -> ChainStatus:
        """Check every link; the first problem found is reported with its line."""
        if not self.path.exists():
            return ChainStatus(True, 0, GENESIS)
        prev = GENESIS
        count = 0
        with self.path.open(encoding="utf-8", errors="replace") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except (ValueError, RecursionError):
                    return ChainStatus(False, count, prev, f"line {lineno}: not valid JSON")
                if not isinstance(rec, dict):
                    return ChainStatus(False, count, prev, f"line {lineno}: not a record")
                if rec.get("seq") != count:
                    return ChainStatus(
                        False, count, prev, f"line {lineno}: record missing or out of order"
                    )
                if rec.get("prev") != prev:
                    return ChainStatus(
                        False, count, prev, f"line {lineno}: does not follow the previous record"
                    )
                if rec.get("hash") != record_hash(rec):
                    return ChainStatus(
                        False, count, prev, f"line {lineno}: content does not match its hash"
                    )
                prev = str(rec["hash"])
                count += 1
        return ChainStatus(True, count, prev)

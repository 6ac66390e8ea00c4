"""The drill journal: hash-chained JSON lines at `state_dir/drills/RUN_ID/journal.jsonl`.

Every record has `type` and `time` (ISO 8601 UTC with milliseconds and `Z`);
the record types and fields are the typed models of `recoveryd.drill_records`,
the shared contract the reports render. Every string is
redacted (known secret values, passwords in DSNs/URIs) and long output is
truncated with a note saying how much was cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from recoveryd import drill_records as records
from recoveryd.chain import ChainStatus, HashChain
from recoveryd.state import iso, utcnow

OUTPUT_LIMIT = 8000
_HEAD = 5000
_TAIL = 2000
# Redaction sees this much beyond the part that is kept, so that a secret (or a
# `password=` key) cut by the truncation is still recognised whole and masked.
_MARGIN = 4096


def drills_dir(state_dir: Path) -> Path:
    return state_dir / "drills"


def run_dir(state_dir: Path, run_id: str) -> Path:
    return drills_dir(state_dir) / run_id


def journal_path(state_dir: Path, run_id: str) -> Path:
    return run_dir(state_dir, run_id) / "journal.jsonl"


def truncate(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """`text`, or its head and tail with a note of how many characters were left out."""
    if len(text) <= limit:
        return text
    cut = len(text) - _HEAD - _TAIL
    return f"{text[:_HEAD]}\n[... {cut} characters truncated ...]\n{text[-_TAIL:]}"


def clip_redacted(text: str, redact: Callable[[str], str], limit: int = OUTPUT_LIMIT) -> str:
    """`truncate(redact(text))`, redacting only the kept head and tail (plus a margin).

    Truncating first and redacting the pieces would leave the part of a secret
    that straddles a cut unrecognised; redacting the whole text costs more than
    linear time on long output.
    """
    if len(text) <= limit:
        return redact(text)
    cut = len(text) - _HEAD - _TAIL
    head = redact(text[: _HEAD + _MARGIN])[:_HEAD]
    tail = redact(text[-(_TAIL + _MARGIN) :])[-_TAIL:]
    return f"{head}\n[... {cut} characters truncated ...]\n{tail}"


class Journal:
    """Appends records to one run's chain; thread-safe (HashChain locks)."""

    def __init__(
        self,
        path: Path,
        redact: Callable[[str], str],
        *,
        clock: Callable[[], datetime] = utcnow,
        listener: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.path = path
        self.chain = HashChain(path)
        self.redact = redact
        self.clock = clock
        self.listener = listener
        self.last: dict[str, Any] | None = None  # the newest record appended by this journal

    def write(self, rec: records.JournalRecord) -> dict[str, Any]:
        """Append one typed record (redacted, truncated); returns the line as written."""
        body = {"type": rec.type, "time": iso(rec.time or self.clock()), **records.to_fields(rec)}
        full = self.chain.append(self._clean(body))
        self.last = full
        if self.listener is not None:
            self.listener(full)
        return full

    def record(self, type_: str, *, time: datetime | None = None, **fields: Any) -> dict[str, Any]:
        """Append a record given by type and fields, checked against its typed model."""
        return self.write(records.build(type_, {**fields, "time": time}))

    def _clean(self, value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            if key in ("output", "error", "detail"):
                return clip_redacted(value, self.redact)
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._clean(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v, key) for v in value]
        return value


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every parseable record of a journal, in file order; `verify_journal` says whether
    they can be trusted."""
    return list(HashChain(path).records())


def check_against_recorded(status: ChainStatus, details: Mapping[str, Any]) -> ChainStatus:
    """`status` of an intact chain, unless the state database's record of the run (its
    `journal_head` and `journal_records`, written when the run ended) disagrees: records
    were then removed from the end, or the whole journal was rewritten with new hashes."""
    head, count = details.get("journal_head"), details.get("journal_records")
    if not status.ok or not isinstance(head, str) or not isinstance(count, int):
        return status
    if status.head == head and status.records == count:
        return status
    return ChainStatus(
        False,
        status.records,
        status.head,
        f"the journal holds {status.records} records, but {count} were recorded in the state "
        "database when the run ended, with another last hash: records were removed or the "
        "journal was rewritten",
    )


def verify_journal(path: Path) -> ChainStatus:
    return HashChain(path).verify()


def iter_runs(state_dir: Path) -> Iterator[Path]:
    """Journal files of past runs, oldest first (run ids sort by time)."""
    base = drills_dir(state_dir)
    if not base.is_dir():
        return iter(())
    return iter(sorted(base.glob("*/journal.jsonl")))

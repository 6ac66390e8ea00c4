"""The manifest: the authenticated record that commits a snapshot (written last).

Stored at `snapshots/<id>` as a MANIFEST envelope whose payload is a
compression marker + UTF-8 JSON (docs/FORMAT.md §5). Chunk ids are the target
repository's own keyed ids, so the same snapshot has a different chunk list in
each target; its id, times and sizes are the same everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recoveryd.model import SnapshotInfo

MANIFEST_VERSION = 1
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(t: datetime) -> str:
    """ISO 8601 UTC with microseconds and `Z`."""
    return t.astimezone(UTC).strftime(_TIME)


def parse_time(s: str) -> datetime:
    return datetime.strptime(s, _TIME).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ChunkRef:
    id: str  # hex keyed hash of the chunk's plaintext; object data/<id[:2]>/<id>
    length: int  # plaintext bytes


@dataclass(frozen=True)
class Manifest:
    id: str
    source: str
    kind: str
    stream_format: str
    start_time: datetime
    end_time: datetime
    size: int
    stored_size: int
    chunks: tuple[ChunkRef, ...]
    classification: str = "internal"
    engine_version: str | None = None
    consistency: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)
    tool_version: str = ""
    hostname: str = ""

    def info(self, target: str) -> SnapshotInfo:
        """The listing entry of this snapshot in the target named `target`."""
        return SnapshotInfo(
            id=self.id,
            source=self.source,
            kind=self.kind,
            time=self.end_time,
            size=self.size,
            stored_size=self.stored_size,
            targets=(target,) if target else (),
            classification=self.classification,
            start_time=self.start_time,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "stream_format": self.stream_format,
            "engine_version": self.engine_version,
            "classification": self.classification,
            "consistency": dict(self.consistency),
            "extra": dict(self.extra),
            "start_time": format_time(self.start_time),
            "end_time": format_time(self.end_time),
            "size": self.size,
            "stored_size": self.stored_size,
            "tool_version": self.tool_version,
            "hostname": self.hostname,
            "chunks": [[c.id, c.length] for c in self.chunks],
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Manifest:
        """Build from the decoded JSON; ValueError/KeyError/TypeError when malformed."""
        if not isinstance(doc, Mapping):
            raise TypeError("a manifest is a JSON object")
        if doc.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {doc.get('version')!r}")
        chunks = tuple(ChunkRef(str(c[0]), int(c[1])) for c in doc["chunks"])
        if sum(c.length for c in chunks) != int(doc["size"]):
            raise ValueError("chunk lengths do not add up to the snapshot size")
        return cls(
            id=str(doc["id"]),
            source=str(doc["source"]),
            kind=str(doc["kind"]),
            stream_format=str(doc["stream_format"]),
            engine_version=doc.get("engine_version"),
            classification=str(doc.get("classification", "internal")),
            consistency={str(k): str(v) for k, v in doc.get("consistency", {}).items()},
            extra={str(k): str(v) for k, v in doc.get("extra", {}).items()},
            start_time=parse_time(doc["start_time"]),
            end_time=parse_time(doc["end_time"]),
            size=int(doc["size"]),
            stored_size=int(doc["stored_size"]),
            tool_version=str(doc.get("tool_version", "")),
            hostname=str(doc.get("hostname", "")),
            chunks=chunks,
        )


def decode_manifest(plaintext: bytes) -> Manifest:
    """A manifest from its (decrypted, decompressed) bytes; ValueError for anything malformed,
    whatever the bytes: not JSON, nested too deeply, a list, numbers too large, bad types."""
    try:
        return Manifest.from_json(json.loads(plaintext))
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, IndexError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None

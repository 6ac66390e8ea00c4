"""The manifest: the authenticated record that commits a snapshot (written last).

Stored at `snapshots/<id>` as a MANIFEST envelope whose payload is a
compression marker + UTF-8 JSON (docs/FORMAT.md §6). Chunk ids are the target
repository's own keyed ids, so the same snapshot has a different chunk list in
each target; its id, times and sizes are the same everywhere.

A snapshot is one stream (manifest version 1: `chunks`) or several named
streams, its parts (version 2: `parts`, each with its own chunk list), made by
a source that dumps with several processes. In memory `chunks` is always every
chunk of the snapshot, the parts' in order, and each `StreamPart` names a range
of it: what prune, verify and copy walk stays one list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recoveryd.model import SnapshotInfo

MANIFEST_VERSION = 1  # one stream
PARTS_VERSION = 2  # several named streams
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
class StreamPart:
    """One named stream of a multi-stream snapshot: `count` chunks of the manifest's
    `chunks`, from index `first`, `size` bytes in all."""

    name: str
    first: int
    count: int
    size: int


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
    parts: tuple[StreamPart, ...] = ()  # empty: the snapshot is one stream

    def part_chunks(self, part: StreamPart) -> tuple[ChunkRef, ...]:
        """The chunks of `part`, in order."""
        return self.chunks[part.first : part.first + part.count]

    def part(self, name: str) -> StreamPart:
        """The part named `name`; KeyError when there is none."""
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(name)

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
        doc: dict[str, Any] = {
            "version": PARTS_VERSION if self.parts else MANIFEST_VERSION,
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
        }
        if not self.parts:
            doc["chunks"] = _refs_json(self.chunks)
            return doc
        doc["parts"] = [
            {"name": p.name, "size": p.size, "chunks": _refs_json(self.part_chunks(p))}
            for p in self.parts
        ]
        return doc

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Manifest:
        """Build from the decoded JSON; ValueError/KeyError/TypeError when malformed."""
        if not isinstance(doc, Mapping):
            raise TypeError("a manifest is a JSON object")
        version = doc.get("version")
        parts: tuple[StreamPart, ...] = ()
        if version == MANIFEST_VERSION:
            chunks = _refs(doc["chunks"])
        elif version == PARTS_VERSION:
            chunks, parts = _parts(doc["parts"])
        else:
            raise ValueError(f"unsupported manifest version {version!r}")
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
            parts=parts,
        )


def _refs_json(refs: tuple[ChunkRef, ...]) -> list[list[object]]:
    return [[c.id, c.length] for c in refs]


def _refs(doc: Any) -> tuple[ChunkRef, ...]:
    return tuple(ChunkRef(str(c[0]), int(c[1])) for c in doc)


def _parts(doc: Any) -> tuple[tuple[ChunkRef, ...], tuple[StreamPart, ...]]:
    """Every chunk of a version-2 manifest in part order, and the parts as ranges of it."""
    if not isinstance(doc, list) or not doc:
        raise TypeError("parts is a non-empty list")
    chunks: list[ChunkRef] = []
    parts: list[StreamPart] = []
    for item in doc:
        refs = _refs(item["chunks"])
        part = StreamPart(str(item["name"]), len(chunks), len(refs), int(item["size"]))
        if sum(c.length for c in refs) != part.size:
            raise ValueError(f"part {part.name}: chunk lengths do not add up to its size")
        if any(p.name == part.name for p in parts):
            raise ValueError(f"part {part.name} appears twice")
        chunks.extend(refs)
        parts.append(part)
    return tuple(chunks), tuple(parts)


def decode_manifest(plaintext: bytes) -> Manifest:
    """A manifest from its (decrypted, decompressed) bytes; ValueError for anything malformed,
    whatever the bytes: not JSON, nested too deeply, a list, numbers too large, bad types."""
    try:
        return Manifest.from_json(json.loads(plaintext))
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, IndexError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None

"""The repository's `config` object (docs/FORMAT.md §5): what every reader and writer of a
repository must agree on (id, cipher, chunker parameters), sealed once at init."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from recoveryd.repo import crypto
from recoveryd.repo.chunker import ChunkerParams
from recoveryd.repo.crypto import CipherId
from recoveryd.repo.manifest import format_time, parse_time

REPO_VERSION = 1


@dataclass(frozen=True)
class RepoConfig:
    """The authenticated `config` object: what every reader and writer must agree on."""

    id: str
    cipher: CipherId
    chunker: ChunkerParams
    created: datetime

    def to_bytes(self) -> bytes:
        doc = {
            "version": REPO_VERSION,
            "id": self.id,
            "cipher": crypto.cipher_name(self.cipher),
            "chunker": self.chunker.to_json(),
            "compression": "zstd",
            "created": format_time(self.created),
        }
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RepoConfig:
        doc = json.loads(data)
        if doc.get("version") != REPO_VERSION:
            raise ValueError(f"unsupported repository version {doc.get('version')!r}")
        return cls(
            id=str(doc["id"]),
            cipher=crypto.cipher_id(str(doc["cipher"])),
            chunker=ChunkerParams(**{k: int(v) for k, v in doc["chunker"].items()}),
            created=parse_time(doc["created"]),
        )

"""The repository's `config` object (docs/FORMAT.md §5): what every reader and writer of a
repository must agree on (id, cipher, chunker parameters, pack size), sealed once at init.

Version 1 repositories store every chunk as its own object; version 2 repositories
(`pack_size` set) write chunks into pack objects found through index objects (§4a), and
read loose chunks of version 1 as well."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from recoveryd.repo import crypto
from recoveryd.repo.chunker import ChunkerParams
from recoveryd.repo.crypto import CipherId
from recoveryd.repo.manifest import format_time, parse_time

LOOSE_VERSION = 1
PACKS_VERSION = 2
REPO_VERSION = PACKS_VERSION
DEFAULT_PACK_SIZE = 16 * 1024 * 1024
MIN_PACK_SIZE = 16 * 1024
MAX_PACK_SIZE = 128 * 1024 * 1024


@dataclass(frozen=True)
class RepoConfig:
    """The authenticated `config` object: what every reader and writer must agree on."""

    id: str
    cipher: CipherId
    chunker: ChunkerParams
    created: datetime
    pack_size: int | None = None  # None: version 1, one object per chunk

    @property
    def version(self) -> int:
        return LOOSE_VERSION if self.pack_size is None else PACKS_VERSION

    def to_bytes(self) -> bytes:
        doc: dict[str, object] = {
            "version": self.version,
            "id": self.id,
            "cipher": crypto.cipher_name(self.cipher),
            "chunker": self.chunker.to_json(),
            "compression": "zstd",  # informational: each payload names its own (FORMAT.md §4)
            "created": format_time(self.created),
        }
        if self.pack_size is not None:
            doc["pack_size"] = self.pack_size
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RepoConfig:
        doc = json.loads(data)
        version = doc.get("version")
        if version not in (LOOSE_VERSION, PACKS_VERSION):
            raise ValueError(f"unsupported repository version {version!r}")
        pack_size = None
        if version == PACKS_VERSION:
            pack_size = int(doc["pack_size"])
            if not MIN_PACK_SIZE <= pack_size <= MAX_PACK_SIZE:
                raise ValueError(f"pack_size {pack_size} is out of range")
        return cls(
            id=str(doc["id"]),
            cipher=crypto.cipher_id(str(doc["cipher"])),
            chunker=ChunkerParams(**{k: int(v) for k, v in doc["chunker"].items()}),
            created=parse_time(doc["created"]),
            pack_size=pack_size,
        )

"""Pack objects and index objects (docs/FORMAT.md §4a): the byte layout, nothing else.

A pack is `blob_1 ‖ … ‖ blob_n ‖ header ‖ header_length`: each blob is a whole chunk
envelope (sealed under the chunk's own key `data/<id[:2]>/<id>`, exactly as a loose
chunk object), the header is a PACK_HEADER envelope (sealed under the pack's key)
whose payload lists `[chunk id, offset, length]` for every blob, and `header_length`
is the header envelope's length as 4 bytes, big-endian. An index object is an INDEX
envelope whose payload lists the blobs of one or more packs.

Blobs are authenticated one by one, so a reader fetches one chunk with a ranged read,
and prune moves blobs into new packs without decrypting them.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from recoveryd.repo import chunker
from recoveryd.repo.layout import pack_key

PACK_FORMAT_VERSION = 2
TRAILER = struct.Struct(">I")
ID_HEX = 64
# Bounds on a pack's header, for packs that fit their size whole: the envelope around the
# payload (header, tag, compression marker), the JSON around the blobs, one blob's entry
# (id, two integers of at most 20 digits, quotes, brackets, commas).
_HEADER_FIXED = 28 + 16 + 1 + len('{"version":2,"blobs":[]}') + TRAILER.size
_HEADER_PER_BLOB = ID_HEX + 2 * 20 + 8


class PackFormatError(ValueError):
    """A pack header or index payload does not follow docs/FORMAT.md §4a."""


@dataclass(frozen=True)
class Blob:
    """One chunk envelope inside a pack: `length` bytes at `offset`."""

    id: str
    offset: int
    length: int


@dataclass(frozen=True)
class Location:
    """Where a chunk's envelope is: in pack `pack` (its id), at `offset`, `length` bytes."""

    pack: str
    offset: int
    length: int

    @property
    def key(self) -> str:
        return pack_key(self.pack)


def new_pack_id() -> str:
    """32 random hex digits."""
    return os.urandom(16).hex()


def _blobs_json(blobs: Iterable[Blob]) -> list[list[object]]:
    return [[b.id, b.offset, b.length] for b in blobs]


def _parse_blobs(raw: object) -> list[Blob]:
    if not isinstance(raw, list):
        raise PackFormatError("blobs is not a list")
    out = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 3):
            raise PackFormatError("a blob entry is not [id, offset, length]")
        cid, offset, length = item
        if not (isinstance(cid, str) and len(cid) == ID_HEX):
            raise PackFormatError("a blob id is not 64 hex digits")
        if not (isinstance(offset, int) and isinstance(length, int) and offset >= 0 < length):
            raise PackFormatError("a blob offset or length is invalid")
        out.append(Blob(cid, offset, length))
    return out


def encode_header(blobs: Sequence[Blob]) -> bytes:
    """The payload of a pack header envelope."""
    doc = {"version": PACK_FORMAT_VERSION, "blobs": _blobs_json(blobs)}
    return chunker.compress(json.dumps(doc, separators=(",", ":")).encode())


def decode_header(payload: bytes) -> list[Blob]:
    try:
        doc = json.loads(chunker.decompress(payload))
    except (chunker.PayloadError, ValueError) as exc:
        raise PackFormatError(f"pack header is malformed ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != PACK_FORMAT_VERSION:
        raise PackFormatError("pack header has an unknown version")
    return _parse_blobs(doc.get("blobs"))


def encode_index(packs: Mapping[str, Sequence[Blob]]) -> bytes:
    """The payload of an index object listing the blobs of `packs` (by pack id)."""
    doc = {
        "version": PACK_FORMAT_VERSION,
        "packs": [{"id": pid, "blobs": _blobs_json(blobs)} for pid, blobs in packs.items()],
    }
    return chunker.compress(json.dumps(doc, separators=(",", ":")).encode())


def decode_index(payload: bytes) -> dict[str, list[Blob]]:
    try:
        doc = json.loads(chunker.decompress(payload))
    except (chunker.PayloadError, ValueError) as exc:
        raise PackFormatError(f"index is malformed ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != PACK_FORMAT_VERSION:
        raise PackFormatError("index has an unknown version")
    packs = doc.get("packs")
    if not isinstance(packs, list):
        raise PackFormatError("index packs is not a list")
    out: dict[str, list[Blob]] = {}
    for entry in packs:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise PackFormatError("an index entry has no pack id")
        out[entry["id"]] = _parse_blobs(entry.get("blobs"))
    return out


def split_trailer(tail: bytes, pack_size: int) -> tuple[int, int]:
    """(offset, length) of the header envelope, from the last bytes of a pack."""
    if len(tail) < TRAILER.size:
        raise PackFormatError("pack is too short")
    (length,) = TRAILER.unpack_from(tail, len(tail) - TRAILER.size)
    offset = pack_size - TRAILER.size - length
    if length <= 0 or offset < 0:
        raise PackFormatError("pack header length is invalid")
    return offset, length


@dataclass
class PackBuilder:
    """A pack being assembled in memory (bounded by the configured pack size). The
    envelopes are kept as they are and joined once, so a pack is copied once."""

    parts: list[bytes | bytearray] = field(default_factory=list)
    blobs: list[Blob] = field(default_factory=list)
    size: int = 0

    def size_with(self, length: int) -> int:
        """At most the size of the finished pack with one more blob of `length` bytes
        (its header counted before compression)."""
        header = _HEADER_FIXED + _HEADER_PER_BLOB * (len(self.blobs) + 1)
        return self.size + length + header

    def add(self, chunk_id: str, envelope: bytes | bytearray) -> None:
        self.blobs.append(Blob(chunk_id, self.size, len(envelope)))
        self.parts.append(envelope)
        self.size += len(envelope)

    def finish(self, seal_header: Callable[[str, bytes], bytes]) -> tuple[str, bytes]:
        """(pack id, pack bytes): appends the header sealed by `seal_header(key, payload)`."""
        pid = new_pack_id()
        header = seal_header(pack_key(pid), encode_header(self.blobs))
        parts, self.parts = self.parts, []
        data = b"".join([*parts, header, TRAILER.pack(len(header))])
        return pid, data


@dataclass
class PackIndex:
    """Every indexed chunk's location, the blobs of every indexed pack, and which index
    objects were read. A chunk in several packs (after an interrupted repack) keeps the
    location seen first; every one of them is valid."""

    locations: dict[str, Location] = field(default_factory=dict)
    packs: dict[str, list[Blob]] = field(default_factory=dict)
    index_ids: set[str] = field(default_factory=set)
    named: dict[str, set[str]] = field(default_factory=dict)  # index id -> pack ids

    def add(self, index_id: str | None, packs: Mapping[str, Sequence[Blob]]) -> None:
        if index_id is not None:
            self.index_ids.add(index_id)
            self.named.setdefault(index_id, set()).update(packs)
        for pid, blobs in packs.items():
            self.packs[pid] = list(blobs)
            for b in blobs:
                self.locations.setdefault(b.id, Location(pid, b.offset, b.length))

    def get(self, chunk_id: str) -> Location | None:
        return self.locations.get(chunk_id)

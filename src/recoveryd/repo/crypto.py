"""Authenticated envelopes: the byte layout of every object in a repository.

Every stored object (config, wrapped data key, chunk, manifest, lock) is one
envelope (docs/FORMAT.md §2):

    offset  size  field
    0       4     magic  b"RCVD"
    4       1     format version (1)
    5       1     object type (ObjectType)
    6       1     cipher (CipherId)
    7       1     reserved, 0
    8       8     key id (data key id; for wrapped keys: master key fingerprint)
    16      12    random nonce
    28      n+16  ciphertext + 16-byte GCM tag

The AEAD's associated data is the 28-byte header followed by the UTF-8 object
key (`data/ab/abcd...`), so a changed header, a moved, renamed or swapped object
all fail authentication. Pure functions; imports only `cryptography`.
"""

from __future__ import annotations

import hmac
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"RCVD"
FORMAT_VERSION = 1
HEADER = struct.Struct(">4sBBBx8s12s")
HEADER_SIZE = HEADER.size  # 28
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_ID_SIZE = 8
KEY_ID_OFFSET = 8  # where the key id sits in the header


class ObjectType(IntEnum):
    CONFIG = 1
    KEY = 2
    CHUNK = 3
    MANIFEST = 4
    LOCK = 5
    WAL = 6
    PACK_HEADER = 7
    INDEX = 8


class CipherId(IntEnum):
    AES_256_GCM = 1
    SM4_GCM = 2


CIPHER_NAMES: dict[str, CipherId] = {
    "aes-256-gcm": CipherId.AES_256_GCM,
    "sm4-gcm": CipherId.SM4_GCM,
}


def cipher_id(name: str) -> CipherId:
    """The CipherId of a configured cipher name (`aes-256-gcm` | `sm4-gcm`)."""
    try:
        return CIPHER_NAMES[name]
    except KeyError:
        raise ValueError(f"unknown cipher {name!r}; use aes-256-gcm or sm4-gcm") from None


def cipher_name(cid: CipherId) -> str:
    return next(n for n, c in CIPHER_NAMES.items() if c == cid)


def key_size(cid: CipherId) -> int:
    """Encryption key length: 32 bytes for AES-256, 16 for SM4."""
    return 32 if cid == CipherId.AES_256_GCM else 16


def hash_algorithm(cid: CipherId) -> hashes.HashAlgorithm:
    """SHA-256 with AES; SM3 with SM4 (GM/T 0004), for HKDF and chunk-id HMAC."""
    return hashes.SHA256() if cid == CipherId.AES_256_GCM else hashes.SM3()


def hkdf(secret: bytes, info: bytes, length: int, cid: CipherId) -> bytes:
    """HKDF (RFC 5869), no salt, with the cipher's hash."""
    return HKDF(algorithm=hash_algorithm(cid), length=length, salt=None, info=info).derive(secret)


def chunk_id(mac_key: bytes, data: bytes | memoryview, cid: CipherId) -> str:
    """Keyed id of a chunk's plaintext: hex HMAC-SHA256 (AES repos) or HMAC-SM3 (SM4 repos)."""
    if cid == CipherId.AES_256_GCM:
        return hmac.new(mac_key, data, "sha256").hexdigest()
    h = chmac.HMAC(mac_key, hashes.SM3())
    h.update(bytes(data))
    return h.finalize().hex()


class EnvelopeError(Exception):
    """An envelope failed to parse or authenticate (caller maps it to IntegrityError)."""


@dataclass(frozen=True)
class Header:
    version: int
    type: ObjectType
    cipher: CipherId
    key_id: bytes
    nonce: bytes


def parse_header(blob: bytes) -> Header:
    """The header of an envelope; EnvelopeError when it is not one of ours."""
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise EnvelopeError("object is too short to be an envelope")
    magic, version, otype, cid, key_id, nonce = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise EnvelopeError("bad magic")
    if version != FORMAT_VERSION:
        raise EnvelopeError(f"unsupported format version {version}")
    try:
        return Header(version, ObjectType(otype), CipherId(cid), key_id, nonce)
    except ValueError as exc:
        raise EnvelopeError(f"bad header field: {exc}") from None


def _sm4_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    return enc.update(plaintext) + enc.finalize() + enc.tag


def _sm4_decrypt(key: bytes, nonce: bytes, blob: memoryview, aad: bytes) -> bytes:
    body, tag = blob[:-TAG_SIZE], bytes(blob[-TAG_SIZE:])
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(aad)
    return dec.update(body) + dec.finalize()


def _header(
    key_id: bytes, cid: CipherId, otype: ObjectType, nonce: bytes | None
) -> tuple[bytes, bytes]:
    """(nonce, header) of a new envelope: the given nonce, or a fresh random one."""
    if len(key_id) != KEY_ID_SIZE:
        raise ValueError("key id must be 8 bytes")
    nonce = nonce if nonce is not None else os.urandom(NONCE_SIZE)
    return nonce, HEADER.pack(MAGIC, FORMAT_VERSION, int(otype), int(cid), key_id, nonce)


def seal(
    plaintext: bytes,
    *,
    key: bytes,
    key_id: bytes,
    cid: CipherId,
    otype: ObjectType,
    name: str,
    nonce: bytes | None = None,
) -> bytes:
    """Encrypt `plaintext` into an envelope bound to the object key `name`."""
    nonce, header = _header(key_id, cid, otype, nonce)
    aad = header + name.encode()
    if cid == CipherId.AES_256_GCM:
        body = AESGCM(key).encrypt(nonce, plaintext, aad)
    else:
        body = _sm4_encrypt(key, nonce, plaintext, aad)
    return header + body


def seal_parts(
    parts: Sequence[bytes | memoryview],
    *,
    key: bytes,
    key_id: bytes,
    cid: CipherId,
    otype: ObjectType,
    name: str,
    nonce: bytes | None = None,
) -> bytearray:
    """The envelope `seal` makes of the concatenation of `parts`, encrypted straight into
    it: no joined plaintext, no ciphertext apart from the envelope (one allocation where
    `seal` of a joined payload makes three)."""
    nonce, header = _header(key_id, cid, otype, nonce)
    algorithm = algorithms.AES(key) if cid == CipherId.AES_256_GCM else algorithms.SM4(key)
    enc = Cipher(algorithm, modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(header + name.encode())
    end = HEADER_SIZE + sum(len(p) for p in parts)
    out = bytearray(end + TAG_SIZE)  # GCM writes what it reads; the tag's room is the slack
    out[:HEADER_SIZE] = header
    view = memoryview(out)
    at = HEADER_SIZE
    for part in parts:
        at += enc.update_into(part, view[at:])
    enc.finalize()
    if at != end:
        raise ValueError("the cipher did not encrypt every byte")
    view[end:] = enc.tag
    return out


def open_envelope(blob: bytes, *, key: bytes, header: Header, name: str) -> bytes:
    """Authenticate and decrypt an envelope whose header was parsed with `parse_header`.

    Raises EnvelopeError when any byte of the object, or its name, differs from
    what was sealed.
    """
    aad = blob[:HEADER_SIZE] + name.encode()
    body = memoryview(blob)[HEADER_SIZE:]  # decrypted in place: no copy of the ciphertext
    try:
        if header.cipher == CipherId.AES_256_GCM:
            return AESGCM(key).decrypt(header.nonce, body, aad)
        return _sm4_decrypt(key, header.nonce, body, aad)
    except (InvalidTag, ValueError):
        raise EnvelopeError("authentication failed") from None

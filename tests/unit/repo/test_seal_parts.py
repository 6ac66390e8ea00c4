"""Sealing a payload from its parts gives the very envelope `seal` makes of it joined."""

from __future__ import annotations

import os

import pytest

from recoveryd.repo import crypto
from recoveryd.repo.crypto import CipherId, ObjectType

NAME = "data/ab/abcdef"


@pytest.mark.parametrize("cid", [CipherId.AES_256_GCM, CipherId.SM4_GCM])
def test_parts_seal_to_the_same_bytes_as_the_joined_payload(cid: CipherId) -> None:
    """With the same key and nonce, `seal_parts([marker, body])` is byte for byte
    `seal(marker + body)` (AES-256-GCM and SM4-GCM), and opens to the joined payload."""
    key, key_id, nonce = os.urandom(crypto.key_size(cid)), os.urandom(8), os.urandom(12)

    def joined(payload: bytes) -> bytes:
        return crypto.seal(
            payload, key=key, key_id=key_id, cid=cid, otype=ObjectType.CHUNK, name=NAME, nonce=nonce
        )

    def parted(*parts: bytes | memoryview) -> bytes:
        return bytes(
            crypto.seal_parts(
                parts,
                key=key,
                key_id=key_id,
                cid=cid,
                otype=ObjectType.CHUNK,
                name=NAME,
                nonce=nonce,
            )
        )

    marker, body = b"\x01", os.urandom(300_001)
    sealed = parted(marker, memoryview(body))
    assert sealed == joined(marker + body)
    header = crypto.parse_header(sealed)
    assert crypto.open_envelope(sealed, key=key, header=header, name=NAME) == marker + body
    assert parted(b"\x00", b"") == joined(b"\x00")

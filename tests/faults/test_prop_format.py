"""Property tests of the object format (hypothesis): every envelope opens to what was
sealed, and any single flipped bit, anywhere in the object, or another object name,
is detected — through the crypto layer and through the repository's reader."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoveryd.errors import IntegrityError
from recoveryd.repo import Repository, crypto
from recoveryd.repo.chunker import compress
from recoveryd.repo.crypto import CipherId, EnvelopeError, ObjectType
from recoveryd.repo.layout import chunk_key
from recoveryd.stores.memory import MemoryStore
from tests.faults.conftest import Tally
from tests.unit.repo.helpers import SMALL, master

KEY = {CipherId.AES_256_GCM: bytes(range(32)), CipherId.SM4_GCM: bytes(range(16))}
names = st.text(alphabet="abcdef0123456789/", min_size=1, max_size=80)
ciphers = st.sampled_from(list(CipherId))
otypes = st.sampled_from(list(ObjectType))


def _open(blob: bytes, cid: CipherId, name: str) -> bytes:
    header = crypto.parse_header(blob)
    return crypto.open_envelope(blob, key=KEY[cid], header=header, name=name)


@given(plaintext=st.binary(max_size=4096), cid=ciphers, otype=otypes, name=names)
def test_seal_then_open_round_trips(
    plaintext: bytes, cid: CipherId, otype: ObjectType, name: str, campaign: Tally
) -> None:
    """open(seal(p)) == p for both ciphers, every object type and any object name; the
    header records the type, the cipher and the key id."""
    campaign.add("inputs")
    blob = crypto.seal(plaintext, key=KEY[cid], key_id=b"k" * 8, cid=cid, otype=otype, name=name)
    header = crypto.parse_header(blob)
    assert (header.type, header.cipher, header.key_id) == (otype, cid, b"k" * 8)
    assert _open(blob, cid, name) == plaintext


@given(plaintext=st.binary(max_size=2048), cid=ciphers, name=names, data=st.data())
def test_any_flipped_bit_is_detected(
    plaintext: bytes, cid: CipherId, name: str, data: st.DataObject, campaign: Tally
) -> None:
    """Flipping any one bit of an envelope (header, nonce, ciphertext or tag) makes it
    fail to parse or to authenticate; it never opens to other bytes."""
    campaign.add("inputs")
    blob = crypto.seal(
        plaintext, key=KEY[cid], key_id=b"k" * 8, cid=cid, otype=ObjectType.CONFIG, name=name
    )
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    damaged = bytearray(blob)
    damaged[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(EnvelopeError):
        _open(bytes(damaged), cid, name)


@given(plaintext=st.binary(max_size=512), cid=ciphers, name=names, other=names)
def test_an_object_moved_to_another_name_is_detected(
    plaintext: bytes, cid: CipherId, name: str, other: str, campaign: Tally
) -> None:
    """An envelope is bound to its object key: read under any other key it fails."""
    campaign.add("inputs")
    blob = crypto.seal(
        plaintext, key=KEY[cid], key_id=b"k" * 8, cid=cid, otype=ObjectType.CHUNK, name=name
    )
    if other == name:
        return
    with pytest.raises(EnvelopeError):
        _open(blob, cid, other)


@functools.cache
def _repo() -> tuple[Repository, MemoryStore]:
    """One in-memory repository for the whole run (keys are costly to derive)."""
    store = MemoryStore("mem")
    return Repository.init(store, master(), chunker_params=SMALL), store


@given(data=st.binary(min_size=1, max_size=3000), flip=st.data())
def test_the_repository_reports_a_damaged_chunk_as_integrity(
    data: bytes, flip: st.DataObject, campaign: Tally
) -> None:
    """A stored chunk with any one bit flipped is an IntegrityError naming the object when
    read back; never other data."""
    campaign.add("inputs")
    repo, store = _repo()
    cid = repo.chunk_id(data)
    name = chunk_key(cid)
    repo.put_object(name, ObjectType.CHUNK, compress(data))
    assert repo.read_chunk(cid, len(data)) == data
    blob = bytearray(store.get(name))
    bit = flip.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    store.put(name, bytes(blob))
    with pytest.raises(IntegrityError) as info:
        repo.read_chunk(cid, len(data))
    assert name in str(info.value)
    store.delete(name)

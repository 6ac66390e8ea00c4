"""The master key file: created safely, read strictly, never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from recoveryd.errors import KeyFileError
from recoveryd.repo import crypto, generate_master_key, load_master_key
from recoveryd.repo.crypto import CipherId, ObjectType


def test_generate_creates_a_private_file_and_loads_back(tmp_path: Path) -> None:
    """`key generate` writes mode 0600 and the same key loads back."""
    path = tmp_path / "keys" / "master.key"
    key = generate_master_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(path).secret == key.secret
    assert key.secret.hex() not in repr(key)
    assert path.read_text().startswith("# recoveryd master key")


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    """An existing key file is never overwritten: that would lose every snapshot."""
    path = tmp_path / "master.key"
    generate_master_key(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_master_key(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found; create one with `recoveryd key generate`"),
        ("", "expected one 'recoveryd-master-key-v1' line"),
        ("recoveryd-master-key-v1 abcd 00000000\n", "malformed key line"),
        ("recoveryd-master-key-v1 " + "00" * 32 + " 00000000\n", "check digits do not match"),
    ],
)
def test_bad_key_files_are_clear_errors(tmp_path: Path, content: str | None, message: str) -> None:
    """Missing, empty, malformed or damaged key files name the file and what to do (exit 2)."""
    path = tmp_path / "master.key"
    if content is not None:
        path.write_text(content)
        path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message) as err:
        load_master_key(path)
    assert str(path) in str(err.value)
    assert err.value.exit_code == 2


def test_damaged_copy_fails_the_check(tmp_path: Path) -> None:
    """A single mistyped hex digit is caught by the check digits."""
    path = tmp_path / "master.key"
    generate_master_key(path)
    text = path.read_text()
    line = text.splitlines()[-1]
    hexkey = line.split()[1]
    bad = hexkey[:10] + ("0" if hexkey[10] != "0" else "1") + hexkey[11:]
    path.write_text(text.replace(hexkey, bad))
    with pytest.raises(KeyFileError, match="check digits"):
        load_master_key(path)


@pytest.mark.parametrize("cid", [CipherId.AES_256_GCM, CipherId.SM4_GCM])
def test_envelope_binds_header_and_name(cid: CipherId) -> None:
    """An envelope opens only under its own name; its header fields are authenticated."""
    key = os.urandom(crypto.key_size(cid))
    blob = crypto.seal(
        b"payload", key=key, key_id=b"k" * 8, cid=cid, otype=ObjectType.CHUNK, name="data/aa/x"
    )
    header = crypto.parse_header(blob)
    assert crypto.open_envelope(blob, key=key, header=header, name="data/aa/x") == b"payload"
    with pytest.raises(crypto.EnvelopeError):
        crypto.open_envelope(blob, key=key, header=header, name="data/aa/y")
    retyped = blob[:5] + bytes([ObjectType.MANIFEST]) + blob[6:]
    with pytest.raises(crypto.EnvelopeError):
        crypto.open_envelope(
            retyped, key=key, header=crypto.parse_header(retyped), name="data/aa/x"
        )

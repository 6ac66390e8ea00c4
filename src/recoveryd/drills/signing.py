"""Signed approvals: Ed25519 key pairs of approvers and the approvals they sign.

A key pair is two files: `NAME.key` (the private key, PKCS#8 PEM, mode 0600)
and `NAME.pub` (one line, `ed25519 <base64 of the 32-byte public key> NAME`).
The configuration names each approver with the `.pub` line or its file.

An approval is one JSON document (`NAME.approval`):

    {"format": "recoveryd-approval/1", "run_id": ..., "playbook_sha256": ...,
     "approver": "alice", "signed_at": "2026-...Z", "signature": "<base64>"}

The signature covers the canonical JSON (sorted keys, no spaces, UTF-8) of
every field but `signature`, so it holds for exactly one run of exactly one
version of the playbook; a changed byte anywhere makes it invalid.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from recoveryd.errors import UsageError
from recoveryd.state import iso

FORMAT: Literal["recoveryd-approval/1"] = "recoveryd-approval/1"
MAX_APPROVAL_BYTES = 16 * 1024


class Approval(BaseModel):
    """A signed approval of one run of one playbook."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["recoveryd-approval/1"] = FORMAT
    run_id: str
    playbook_sha256: str
    approver: str
    signed_at: str
    signature: str = ""

    def payload(self) -> bytes:
        body = self.model_dump(exclude={"signature"})
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True, indent=2) + "\n"


class KeyPair(BaseModel):
    model_config = ConfigDict(frozen=True)

    private_key: Path
    public_key_file: Path
    public_key: str  # the .pub line


# --- keys


def public_line(public: Ed25519PublicKey, name: str) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"ed25519 {base64.b64encode(raw).decode()} {name}"


def fingerprint(public: Ed25519PublicKey) -> str:
    """`SHA256:` and the first 16 hex digits of the SHA-256 of the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:16]


def parse_public_line(line: str) -> tuple[Ed25519PublicKey, str]:
    """The key and the comment (name) of a `.pub` line; ValueError saying what is wrong."""
    parts = line.strip().split()
    if len(parts) < 2 or parts[0] != "ed25519":
        raise ValueError('not an approver key; expected "ed25519 <base64> NAME"')
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw), " ".join(parts[2:])


def generate(name: str, directory: Path) -> KeyPair:
    """Write `NAME.key` (0600, never overwritten) and `NAME.pub` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(
            f"approver keygen: {key_path} exists; keep it or remove it first"
        ) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    line = public_line(private.public_key(), name)
    pub_path.write_text(line + "\n", encoding="utf-8")
    return KeyPair(private_key=key_path, public_key_file=pub_path, public_key=line)


def load_private(path: Path) -> tuple[Ed25519PrivateKey, str]:
    """The private key in `path` and the name in the `.pub` next to it (or the file's stem)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--key {path}: cannot read it ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise UsageError(
            f"--key {path}: not an approver's private key; make one with "
            "`recoveryd approver keygen NAME`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"--key {path}: not an Ed25519 key; use `recoveryd approver keygen`")
    name = path.stem
    pub = path.with_suffix(".pub")
    if pub.is_file():
        with contextlib.suppress(ValueError):
            name = parse_public_line(pub.read_text(encoding="utf-8"))[1] or name
    return key, name


# --- approvals


def sign(key: Ed25519PrivateKey, approver: str, run_id: str, playbook_sha256: str) -> Approval:
    unsigned = Approval(
        run_id=run_id,
        playbook_sha256=playbook_sha256,
        approver=approver,
        signed_at=iso(datetime.now(UTC)),
    )
    signature = base64.b64encode(key.sign(unsigned.payload())).decode()
    return unsigned.model_copy(update={"signature": signature})


def read_approval(data: bytes) -> Approval:
    """The approval in `data`; ValueError when it is not one."""
    if len(data) > MAX_APPROVAL_BYTES:
        raise ValueError("too large to be an approval")
    try:
        return Approval.model_validate_json(data)
    except ValidationError:
        raise ValueError(f"not a {FORMAT} document") from None


def check(approval: Approval, key: Ed25519PublicKey) -> bool:
    """Whether `approval` carries a valid signature by `key`."""
    try:
        key.verify(base64.b64decode(approval.signature, validate=True), approval.payload())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True

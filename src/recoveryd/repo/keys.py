"""The master key file and the per-repository data keys it wraps.

Master key file (docs/FORMAT.md §1): a small text file, mode 0600:

    # recoveryd master key. Keep it secret and keep a copy offline:
    # without it no snapshot can be read.
    recoveryd-master-key-v1 <64 hex digits: the 32-byte key> <8 hex digits: check>

The check is the first 4 bytes of SHA-256 over the 32 key bytes, so a
mistyped copy is refused rather than silently opening nothing.

A repository holds one or more data keys under `keys/<key-id>`, each an
envelope of type KEY sealed with the KEK = HKDF(master, "recoveryd/v1/kek/<cipher>")
and carrying the master key's fingerprint as its key id. A data key is an
encryption key plus the repository's chunk-id MAC key; the MAC key is the same
in every data key of a repository, so deduplication survives rotation. The
newest data key (by `created`, then id) encrypts new objects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recoveryd.errors import IntegrityError, KeyFileError
from recoveryd.repo import crypto
from recoveryd.repo.crypto import CipherId, ObjectType
from recoveryd.repo.layout import KEYS_PREFIX
from recoveryd.secrets import refuse_world_readable
from recoveryd.stores.base import ObjectStore

MASTER_KEY_SIZE = 32
_LINE = re.compile(r"^recoveryd-master-key-v1\s+([0-9a-fA-F]{64})\s+([0-9a-fA-F]{8})\s*$")


@dataclass(frozen=True)
class MasterKey:
    """The 32 secret bytes of a master key file; never printed (repr hides them)."""

    secret: bytes
    path: str = ""

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self.fingerprint().hex()}, path={self.path!r})"

    def fingerprint(self) -> bytes:
        """8 bytes identifying this master key without revealing it (stored in key envelopes)."""
        return crypto.hkdf(self.secret, b"recoveryd/v1/master-id", 8, CipherId.AES_256_GCM)

    def kek(self, cid: CipherId) -> bytes:
        """The key-encryption key for data keys of a repository using cipher `cid`."""
        info = b"recoveryd/v1/kek/" + crypto.cipher_name(cid).encode()
        return crypto.hkdf(self.secret, info, crypto.key_size(cid), cid)


def _check(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:8]


def format_master_key(secret: bytes) -> str:
    """The text of a master key file holding `secret`."""
    return (
        "# recoveryd master key. Keep it secret and keep a copy offline:\n"
        "# without it no snapshot can be read. Format: docs/FORMAT.md section 1.\n"
        f"recoveryd-master-key-v1 {secret.hex()} {_check(secret)}\n"
    )


def generate_master_key(path: str | Path) -> MasterKey:
    """Create a new random master key file at `path` (mode 0600); refuses to overwrite."""
    p = Path(path)
    secret = os.urandom(MASTER_KEY_SIZE)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"key file {p}: already exists; refusing to overwrite a master key (move it away first)"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"key file {p}: cannot create it ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(format_master_key(secret))
        fh.flush()
        os.fsync(fh.fileno())
    return MasterKey(secret, str(p))


def parse_master_key(text: str, where: str = "key file") -> MasterKey:
    """Parse the text of a master key file; KeyFileError naming `where` when malformed."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(lines) != 1:
        raise KeyFileError(
            f"{where}: expected one 'recoveryd-master-key-v1' line; "
            "is this a file made by `recoveryd key generate`?"
        )
    m = _LINE.match(lines[0])
    if not m:
        raise KeyFileError(
            f"{where}: malformed key line; expected 'recoveryd-master-key-v1 <64 hex> <8 hex>'"
        )
    secret = bytes.fromhex(m.group(1))
    if _check(secret) != m.group(2).lower():
        raise KeyFileError(f"{where}: check digits do not match the key; the copy is damaged")
    return MasterKey(secret, where)


def load_master_key(path: str | Path) -> MasterKey:
    """Read a master key file; KeyFileError (exit 2) naming the file and the fix, ConfigError
    (exit 2) when every user of the host may read it (group-readable is fine)."""
    p = Path(path)
    refuse_world_readable(p, "key file")
    try:
        text = p.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(
            f"key file {p}: not found; create one with `recoveryd key generate` "
            "or fix encryption.key_file"
        ) from None
    except PermissionError:
        raise KeyFileError(
            f"key file {p}: permission denied for this user; give it to the service's group "
            f"(`chgrp recoveryd {p}; chmod 0640 {p}`) or hand it over with "
            "LoadCredential=master.key:PATH and `key_file: credential:master.key`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {p}: cannot read it ({exc})") from None
    key = parse_master_key(text, f"key file {p}")
    return MasterKey(key.secret, str(p))


@dataclass(frozen=True)
class DataKey:
    """One data key of a repository: `enc_key` encrypts, `mac_key` names chunks."""

    id: str  # 16 hex digits
    cipher: CipherId
    enc_key: bytes
    mac_key: bytes
    created: datetime

    def __repr__(self) -> str:
        return f"DataKey(id={self.id}, cipher={crypto.cipher_name(self.cipher)})"

    @property
    def id_bytes(self) -> bytes:
        return bytes.fromhex(self.id)

    @property
    def object_key(self) -> str:
        return f"keys/{self.id}"


def new_data_key(
    cid: CipherId, mac_key: bytes | None = None, *, now: datetime | None = None
) -> DataKey:
    """A fresh random data key; reuses `mac_key` when rotating."""
    return DataKey(
        id=os.urandom(crypto.KEY_ID_SIZE).hex(),
        cipher=cid,
        enc_key=os.urandom(crypto.key_size(cid)),
        mac_key=mac_key if mac_key is not None else os.urandom(32),
        created=now or datetime.now(UTC),
    )


def wrap(key: DataKey, master: MasterKey) -> bytes:
    """The envelope stored at `keys/<id>`."""
    doc = {
        "version": 1,
        "id": key.id,
        "cipher": crypto.cipher_name(key.cipher),
        "created": key.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "enc_key": base64.b64encode(key.enc_key).decode(),
        "mac_key": base64.b64encode(key.mac_key).decode(),
    }
    return crypto.seal(
        json.dumps(doc, sort_keys=True).encode(),
        key=master.kek(key.cipher),
        key_id=master.fingerprint(),
        cid=key.cipher,
        otype=ObjectType.KEY,
        name=key.object_key,
    )


class WrongMasterKey(Exception):  # noqa: N818 - a condition, mapped by the caller
    """The key object was wrapped by a different master key."""


def unwrap(blob: bytes, name: str, master: MasterKey) -> DataKey:
    """Open a `keys/<id>` object. WrongMasterKey when another master wrapped it;
    crypto.EnvelopeError when it was altered."""
    header = crypto.parse_header(blob)
    if header.type != ObjectType.KEY:
        raise crypto.EnvelopeError("not a key object")
    if header.key_id != master.fingerprint():
        raise WrongMasterKey(header.key_id.hex())
    plain = crypto.open_envelope(blob, key=master.kek(header.cipher), header=header, name=name)
    try:
        doc = json.loads(plain)
        created = datetime.strptime(doc["created"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        key = DataKey(
            id=str(doc["id"]),
            cipher=crypto.cipher_id(str(doc["cipher"])),
            enc_key=base64.b64decode(doc["enc_key"]),
            mac_key=base64.b64decode(doc["mac_key"]),
            created=created,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise crypto.EnvelopeError(f"malformed key document: {exc}") from None
    if key.object_key != name or key.cipher != header.cipher:
        raise crypto.EnvelopeError("key document does not match its object name")
    return key


def relabelled(blob: bytes, name: str, master: MasterKey) -> bool:
    """True when a key object that names another master key opens under `master` once its
    key id is put back to `master`'s fingerprint: only its label was changed (tampering),
    it was not wrapped by another master key."""
    start = crypto.KEY_ID_OFFSET
    fixed = blob[:start] + master.fingerprint() + blob[start + crypto.KEY_ID_SIZE :]
    try:
        unwrap(fixed, name, master)
    except (crypto.EnvelopeError, WrongMasterKey):
        return False
    return True


def load_data_keys(store: ObjectStore, master: MasterKey, where: str) -> dict[str, DataKey]:
    """Every data key of the repository in `store` that `master` unwraps.

    KeyFileError (exit 2) when `master` opens none of them (another master key wrapped
    them); IntegrityError (exit 3) naming the object when one was altered, including a
    changed master key id in its header, or when there are none at all."""
    found: dict[str, DataKey] = {}
    others: set[str] = set()
    for obj in store.list(KEYS_PREFIX):
        blob = store.get(obj.key)
        try:
            key = unwrap(blob, obj.key, master)
        except WrongMasterKey as exc:
            if relabelled(blob, obj.key, master):
                raise IntegrityError(
                    f"target {where}: key object {obj.key} was altered (the master key id in "
                    "its header was changed; its content still opens with this master key); "
                    "restore the object from another copy of the repository",
                    obj=obj.key,
                ) from None
            others.add(str(exc))
            continue
        except crypto.EnvelopeError as exc:
            raise IntegrityError(
                f"target {where}: key object {obj.key} failed authentication ({exc}); "
                "the repository was altered",
                obj=obj.key,
            ) from None
        found[key.id] = key
    if not found and not others:
        raise IntegrityError(
            f"target {where}: the repository holds no key objects (keys/ is empty), so no "
            "master key can open it; the repository was altered: restore keys/ from another "
            "copy of the repository",
            obj=KEYS_PREFIX,
        )
    if not found:
        hint = f" (its keys were wrapped by master key {sorted(others)[0]})" if others else ""
        raise KeyFileError(
            f"target {where}: master key {master.path or ''} (fingerprint "
            f"{master.fingerprint().hex()}) does not open this repository{hint}; "
            "use the key file it was created with"
        )
    return found

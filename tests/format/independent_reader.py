"""An independent reader of recoveryd repositories, written from docs/FORMAT.md alone.

Uses only the standard library, `cryptography`, `zstandard` and `lz4`: it must not
import recoveryd. Given a repository directory (filesystem layout: object
`a/b/c` is the file `<root>/a/b/c`) and a master key file, it lists snapshots
and writes a snapshot's stream to a file (a snapshot made of parts: each part
to its own file, `OUT/<part name>`).

    python independent_reader.py KEYFILE REPO_DIR            # list snapshots
    python independent_reader.py KEYFILE REPO_DIR ID OUT     # restore one
    python independent_reader.py KEYFILE REPO_DIR --packs    # check pack headers vs index
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import sys
from pathlib import Path

import lz4.frame
import zstandard
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HEADER = struct.Struct(">4sBBBB8s12s")
CIPHERS = {1: "aes-256-gcm", 2: "sm4-gcm"}


class FormatError(Exception):
    pass


def read_master_key(path: Path) -> bytes:
    lines = [
        ln.strip()
        for ln in path.read_text(encoding="ascii").splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    if len(lines) != 1:
        raise FormatError("key file: expected one key line")
    tag, hexkey, check = lines[0].split()
    if tag != "recoveryd-master-key-v1":
        raise FormatError("key file: unknown format")
    key = bytes.fromhex(hexkey)
    if len(key) != 32 or hashlib.sha256(key).hexdigest()[:8] != check.lower():
        raise FormatError("key file: check digits do not match")
    return key


def _hkdf(secret: bytes, info: bytes, length: int, sm: bool) -> bytes:
    algo = hashes.SM3() if sm else hashes.SHA256()
    return HKDF(algorithm=algo, length=length, salt=None, info=info).derive(secret)


def open_envelope(blob: bytes, name: str, keys: dict[bytes, bytes], otype: int) -> bytes:
    """Authenticate + decrypt; `keys` maps 8-byte key ids to encryption keys."""
    magic, version, typ, cipher, reserved, key_id, nonce = HEADER.unpack_from(blob)
    if magic != b"RCVD" or version != 1 or typ != otype or reserved != 0:
        raise FormatError(f"{name}: not a version-1 envelope of type {otype}")
    if key_id not in keys:
        raise FormatError(f"{name}: sealed with an unknown key")
    aad = blob[:28] + name.encode("utf-8")
    body = blob[28:]
    key = keys[key_id]
    if cipher == 1:
        return AESGCM(key).decrypt(nonce, body, aad)
    if cipher == 2:
        dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, body[-16:])).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(body[:-16]) + dec.finalize()
    raise FormatError(f"{name}: unknown cipher {cipher}")


def decode_payload(payload: bytes) -> bytes:
    if payload[0] == 0:
        return payload[1:]
    if payload[0] == 1:
        return zstandard.ZstdDecompressor().decompress(payload[1:])
    if payload[0] == 2:
        return lz4.frame.decompress(payload[1:])  # type: ignore[no-any-return]
    raise FormatError("unknown compression marker")


class Repo:
    def __init__(self, root: Path, master: bytes) -> None:
        self.root = root
        fingerprint = _hkdf(master, b"recoveryd/v1/master-id", 8, sm=False)
        self.keys: dict[bytes, bytes] = {}
        self.mac_key = b""
        self.cipher = ""
        mac_keys: dict[bytes, bytes] = {}
        for path in sorted((root / "keys").iterdir()):
            name = f"keys/{path.name}"
            blob = path.read_bytes()
            cipher = CIPHERS[blob[6]]
            sm = cipher == "sm4-gcm"
            kek = _hkdf(master, b"recoveryd/v1/kek/" + cipher.encode(), 16 if sm else 32, sm)
            doc = json.loads(open_envelope(blob, name, {fingerprint: kek}, 2))
            if doc["version"] != 1 or doc["id"] != path.name:
                raise FormatError(f"{name}: key document does not match")
            self.keys[bytes.fromhex(doc["id"])] = base64.b64decode(doc["enc_key"])
            mac_keys[bytes.fromhex(doc["id"])] = base64.b64decode(doc["mac_key"])
            self.cipher = doc["cipher"]
        config_blob = self.obj("config")
        config = json.loads(open_envelope(config_blob, "config", self.keys, 1))
        self.mac_key = mac_keys[config_blob[8:16]]  # the key sealing config names chunks
        if config["version"] not in (1, 2):
            raise FormatError("config: unknown version")
        self.cipher = config["cipher"]
        self.locations = self.read_index() if (root / "index").is_dir() else {}

    def obj(self, name: str) -> bytes:
        return self.root.joinpath(*name.split("/")).read_bytes()

    def read_index(self) -> dict[str, tuple[str, int, int]]:
        """chunk id -> (pack key, offset, length), from every index object (§4a)."""
        out: dict[str, tuple[str, int, int]] = {}
        for path in sorted((self.root / "index").iterdir()):
            name = f"index/{path.name}"
            doc = json.loads(decode_payload(open_envelope(path.read_bytes(), name, self.keys, 8)))
            if doc["version"] != 2:
                raise FormatError(f"{name}: unknown index version")
            for pack in doc["packs"]:
                key = f"packs/{pack['id'][:2]}/{pack['id']}"
                for cid, offset, length in pack["blobs"]:
                    out.setdefault(cid, (key, offset, length))
        return out

    def pack_header(self, key: str) -> list[list[object]]:
        """The blob list a pack's own header holds (its last 4 bytes give the header length)."""
        blob = self.obj(key)
        (length,) = struct.unpack(">I", blob[-4:])
        header = blob[len(blob) - 4 - length : -4]
        doc = json.loads(decode_payload(open_envelope(header, key, self.keys, 7)))
        return doc["blobs"]  # type: ignore[no-any-return]

    def chunk_envelope(self, cid: str) -> bytes:
        """A chunk's envelope: a slice of its pack when indexed, else its loose object."""
        if cid in self.locations:
            key, offset, length = self.locations[cid]
            with self.root.joinpath(*key.split("/")).open("rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        return self.obj(f"data/{cid[:2]}/{cid}")

    def manifests(self) -> list[dict[str, object]]:
        out = []
        for path in sorted((self.root / "snapshots").iterdir()):
            name = f"snapshots/{path.name}"
            doc = json.loads(decode_payload(open_envelope(path.read_bytes(), name, self.keys, 4)))
            if doc["version"] not in (1, 2) or doc["id"] != path.name:
                raise FormatError(f"{name}: manifest does not match its name")
            out.append(doc)
        return out

    def chunk_id(self, data: bytes) -> str:
        if self.cipher == "aes-256-gcm":
            return hmac.new(self.mac_key, data, "sha256").hexdigest()
        h = chmac.HMAC(self.mac_key, hashes.SM3())
        h.update(data)
        return h.finalize().hex()

    def restore(self, snapshot_id: str, out: Path) -> int:
        (manifest,) = [m for m in self.manifests() if m["id"] == snapshot_id]
        if manifest["version"] == 1:
            return self.write_stream(manifest["chunks"], out)  # type: ignore[arg-type]
        out.mkdir()
        total = 0
        for part in manifest["parts"]:  # type: ignore[attr-defined]
            if "/" in part["name"] or part["name"] in ("", ".", ".."):
                raise FormatError(f"{snapshot_id}: part name {part['name']!r} is not a file name")
            size = self.write_stream(part["chunks"], out / part["name"])
            if size != part["size"]:
                raise FormatError(f"{snapshot_id}: part {part['name']} has the wrong size")
            total += size
        return total

    def write_stream(self, chunks: list[list[object]], out: Path) -> int:
        total = 0
        with out.open("wb") as fh:
            for cid, length in chunks:
                name = f"data/{str(cid)[:2]}/{cid}"  # the chunk's key, wherever it is stored
                envelope = self.chunk_envelope(str(cid))
                data = decode_payload(open_envelope(envelope, name, self.keys, 3))
                if len(data) != length or self.chunk_id(data) != cid:
                    raise FormatError(f"{name}: content does not match its id")
                fh.write(data)
                total += len(data)
        return total

    def wal(self, source: str, file_name: str, out: Path, prefix: str = "wal") -> int:
        name = f"{prefix}/{source}/{file_name}"
        data = decode_payload(open_envelope(self.obj(name), name, self.keys, 6))
        out.write_bytes(data)
        return len(data)


def main(argv: list[str]) -> int:
    repo = Repo(Path(argv[1]), read_master_key(Path(argv[0])))
    if len(argv) == 5 and argv[2] in ("--wal", "--binlog"):  # KEY ROOT --wal SOURCE/FILE OUT
        source, file_name = argv[3].split("/")
        repo.wal(source, file_name, Path(argv[4]), argv[2].removeprefix("--"))
        return 0
    if len(argv) == 3 and argv[2] == "--packs":  # KEY ROOT --packs: headers vs the index
        for path in sorted((repo.root / "packs").glob("*/*")):
            key = f"packs/{path.parent.name}/{path.name}"
            for cid, offset, length in repo.pack_header(key):
                if repo.locations.get(cid) != (key, offset, length):  # type: ignore[arg-type]
                    raise FormatError(f"{key}: header and index disagree on {cid}")
            print(key)
        return 0
    if len(argv) == 2:
        for m in repo.manifests():
            print(m["id"], m["source"], m["end_time"], m["size"])
        return 0
    repo.restore(argv[2], Path(argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

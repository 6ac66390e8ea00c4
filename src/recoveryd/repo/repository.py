"""A repository: the snapshot format on top of one ObjectStore (one target).

Layout (docs/FORMAT.md §3): `config`, `keys/<key-id>`, `packs/<id[:2]>/<id>` and
`index/<id>` (version 2), `data/<id[:2]>/<id>` (version 1), `snapshots/<snapshot-id>`,
`locks/<lock-id>`. The store is the source of
truth: listing, restore and verify need only the store and the master key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from recoveryd.errors import (
    AmbiguousSnapshotError,
    IntegrityError,
    NotFoundError,
    PreconditionFailedError,
    RecoverydError,
    RepositoryMissingError,
    SnapshotNotFoundError,
)
from recoveryd.flow import NO_TALLY, Tally
from recoveryd.model import SnapshotInfo, VerifyReport
from recoveryd.repo import chunker, crypto, keys, locks
from recoveryd.repo.chunker import ChunkerParams
from recoveryd.repo.chunkstore import Chunks
from recoveryd.repo.copy import copy_snapshot
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.damage import integrity_error, parse_header
from recoveryd.repo.keys import DataKey, MasterKey
from recoveryd.repo.layout import (
    CONFIG_KEY,
    SNAPSHOTS_PREFIX,
    manifest_key,
)
from recoveryd.repo.manifest import Manifest, decode_manifest
from recoveryd.repo.prune import PruneReport, forget_and_prune
from recoveryd.repo.repoconfig import DEFAULT_PACK_SIZE, RepoConfig
from recoveryd.repo.restore import RestoreReader
from recoveryd.repo.retention import Policy
from recoveryd.repo.verify import verify
from recoveryd.stores.base import Capabilities, ObjectStore, Retention

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Repository:
    """One target's repository. Thread-safe for concurrent object reads and writes."""

    def __init__(
        self,
        store: ObjectStore,
        master: MasterKey,
        config: RepoConfig,
        data_keys: Mapping[str, DataKey],
        *,
        name: str = "",
        retention_days: int | None = None,
        lock_mode: str | None = None,
        concurrency: int = 4,
        clock: Clock = utcnow,
        pack_size: int | None = None,
    ) -> None:
        """Use `init`, `open` or `open_or_init`. `pack_size`: that of new packs, when not
        the one the repository was created with."""
        self.store = store
        self.master = master
        self.config = config
        self.name = name or store.name
        self.retention_days = retention_days
        self.lock_mode = lock_mode or "compliance"
        self.concurrency = concurrency
        self.clock = clock
        self._keys = dict(data_keys)
        self._manifests: dict[str, Manifest] = {}
        self._caps: Capabilities | None = None
        self.config_key_id = min(self._keys.values(), key=lambda k: (k.created, k.id)).id
        self.chunks = Chunks(self)
        self._pack_size = pack_size

    @property
    def pack_size(self) -> int | None:
        """The size of new packs; None in a version 1 repository (one object per chunk)."""
        return None if self.config.pack_size is None else self._pack_size or self.config.pack_size

    # -- construction -------------------------------------------------------------

    @classmethod
    def init(
        cls,
        store: ObjectStore,
        master: MasterKey,
        *,
        cipher: str = "aes-256-gcm",
        name: str = "",
        chunker_params: ChunkerParams = chunker.DEFAULT_PARAMS,
        pack_size: int | None = DEFAULT_PACK_SIZE,
        **options: Any,
    ) -> Repository:
        """Create a repository in an empty store location; RecoverydError if one exists.

        `pack_size` None creates a version 1 repository (one object per chunk)."""
        where = name or store.name
        if store.exists(CONFIG_KEY):
            raise RecoverydError(
                f"target {where}: a repository already exists there; open it instead"
            )
        cid = crypto.cipher_id(cipher)
        clock: Clock = options.get("clock", utcnow)
        key = keys.new_data_key(cid, now=clock())
        config = RepoConfig(os.urandom(16).hex(), cid, chunker_params, clock(), pack_size)
        repo = cls(store, master, config, {key.id: key}, name=name, **options)
        store.put(key.object_key, keys.wrap(key, master))
        blob = repo._seal(CONFIG_KEY, ObjectType.CONFIG, config.to_bytes())
        conditional = store.capabilities().conditional_put
        try:
            store.put(CONFIG_KEY, blob, if_absent=conditional)
        except PreconditionFailedError:
            store.delete(key.object_key)
            raise RecoverydError(
                f"target {where}: another process initialised the repository at the same "
                "time; run the command again"
            ) from None
        # Without conditional writes two first backups can both write `config`;
        # the last write wins, and the loser adopts the winner's repository.
        if not conditional and cls.open(store, master, name=name).config.id != config.id:
            store.delete(key.object_key)
            return cls.open(store, master, name=name, **options)
        return repo

    @classmethod
    def open(
        cls, store: ObjectStore, master: MasterKey, *, name: str = "", **options: Any
    ) -> Repository:
        """Open an existing repository: unwrap its data keys, authenticate its config."""
        where = name or store.name
        try:
            blob = store.get(CONFIG_KEY)
        except NotFoundError:
            raise RepositoryMissingError(where, "this target") from None
        data_keys = keys.load_data_keys(store, master, where)
        header = parse_header(blob, CONFIG_KEY, None)
        key = data_keys.get(header.key_id.hex())
        if key is None or header.type != ObjectType.CONFIG:
            raise IntegrityError(
                f"target {where}: object config names an unknown key or type; "
                "the repository was altered",
                obj=CONFIG_KEY,
            )
        try:
            plain = crypto.open_envelope(blob, key=key.enc_key, header=header, name=CONFIG_KEY)
            config = RepoConfig.from_bytes(plain)
        except (crypto.EnvelopeError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(
                f"target {where}: object config failed authentication ({exc}); "
                "the repository was altered",
                obj=CONFIG_KEY,
            ) from None
        repo = cls(store, master, config, data_keys, name=name, **options)
        repo.config_key_id = key.id
        return repo

    @classmethod
    def open_or_init(
        cls,
        store: ObjectStore,
        master: MasterKey,
        *,
        cipher: str = "aes-256-gcm",
        name: str = "",
        **options: Any,
    ) -> Repository:
        """Open the repository, creating it (with `cipher`) when the location is empty."""
        if store.exists(CONFIG_KEY):
            return cls.open(store, master, name=name, **options)
        return cls.init(store, master, cipher=cipher, name=name, **options)

    # -- keys -----------------------------------------------------------------------

    @property
    def current_key(self) -> DataKey:
        """The data key new objects are sealed with: the newest one."""
        return max(self._keys.values(), key=lambda k: (k.created, k.id))

    @property
    def data_keys(self) -> tuple[DataKey, ...]:
        return tuple(sorted(self._keys.values(), key=lambda k: (k.created, k.id)))

    @property
    def mac_key(self) -> bytes:
        """The chunk-naming key: that of the data key sealing `config`.

        Rotated keys copy it, so in a healthy repository every key carries it;
        taking it from the config's key keeps chunk ids consistent even if a
        key of a concurrent, losing initialisation was left behind."""
        return self._keys[self.config_key_id].mac_key

    def _reload_keys(self) -> dict[str, DataKey]:
        """Pick up data keys added since open (another process rotated); never drops one."""
        try:
            fresh = keys.load_data_keys(self.store, self.master, self.name)
        except RecoverydError:
            return self._keys
        for kid, key in fresh.items():
            self._keys.setdefault(kid, key)
        return self._keys

    def rotate_data_key(self) -> DataKey:
        """Add a new data key for new writes; old keys stay so old snapshots restore."""
        key = keys.new_data_key(self.config.cipher, self.mac_key, now=self.clock())
        self.store.put(key.object_key, keys.wrap(key, self.master))
        self._keys[key.id] = key
        return key

    def rewrap(self, new_master: MasterKey) -> None:
        """Re-wrap every data key under `new_master`; afterwards only it opens the repository.

        Each `keys/<id>` object is overwritten atomically; if interrupted, some
        keys are under the old master and some under the new: run it again with
        the old master key; it re-wraps the keys it still opens.
        """
        # The key that seals `config` goes last: until it moves, the old master
        # still opens the repository, so an interrupted rewrap can be resumed.
        ordered = sorted(self.data_keys, key=lambda k: k.id == self.config_key_id)
        for key in ordered:
            blob = keys.wrap(key, new_master)
            keys.unwrap(blob, key.object_key, new_master)  # prove it before overwriting
            self.store.put(key.object_key, blob)
        self.master = new_master

    def enable_packs(self, pack_size: int = DEFAULT_PACK_SIZE) -> None:
        """Upgrade a version 1 repository to version 2: new chunks go into packs, loose ones
        stay where they are and remain readable. `config` is resealed with the same id and
        key (so running backups still commit); recoveryd releases that know only version 1
        refuse the repository afterwards."""
        if self.config.pack_size is not None:
            return
        config = replace(self.config, pack_size=pack_size)
        key = self._keys[self.config_key_id]
        blob = crypto.seal(
            config.to_bytes(),
            key=key.enc_key,
            key_id=key.id_bytes,
            cid=self.config.cipher,
            otype=ObjectType.CONFIG,
            name=CONFIG_KEY,
        )
        self.store.put(CONFIG_KEY, blob)
        self.config = config

    # -- objects --------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        if self._caps is None:
            self._caps = self.store.capabilities()
        return self._caps

    def retention(self) -> Retention | None:
        """Object Lock retention for new data objects, when configured and enforced."""
        if not self.retention_days or not self.capabilities().object_lock:
            return None
        until = self.clock() + timedelta(days=self.retention_days)
        return Retention(self.lock_mode, until)

    def _seal(self, name: str, otype: ObjectType, plaintext: bytes) -> bytes:
        key = self.current_key
        return crypto.seal(
            plaintext,
            key=key.enc_key,
            key_id=key.id_bytes,
            cid=self.config.cipher,
            otype=otype,
            name=name,
        )

    def seal(self, name: str, otype: ObjectType, plaintext: bytes) -> bytes:
        """The envelope of `plaintext` stored under `name`, sealed with the current key."""
        return self._seal(name, otype, plaintext)

    def put_object(
        self, name: str, otype: ObjectType, plaintext: bytes, *, retention: Retention | None = None
    ) -> int:
        """Seal and store an object; returns the stored size in bytes."""
        blob = self._seal(name, otype, plaintext)
        self.store.put(name, blob, retention=retention)
        return len(blob)

    def open_blob(
        self, name: str, blob: bytes, otype: ObjectType, *, snapshot: str | None = None
    ) -> bytes:
        """Authenticate and decrypt a stored object; IntegrityError naming it otherwise."""
        header = parse_header(blob, name, snapshot)
        key = self._keys.get(header.key_id.hex())
        if key is None and header.type == otype:
            key = self._reload_keys().get(header.key_id.hex())
        if header.type != otype or key is None:
            raise integrity_error(name, snapshot, "has the wrong type or an unknown key")
        try:
            return crypto.open_envelope(blob, key=key.enc_key, header=header, name=name)
        except crypto.EnvelopeError:
            raise integrity_error(name, snapshot, "failed authentication") from None

    def get_object(self, name: str, otype: ObjectType, *, snapshot: str | None = None) -> bytes:
        """Fetch, authenticate and decrypt; NotFoundError when absent."""
        return self.open_blob(name, self.store.get(name), otype, snapshot=snapshot)

    def read_chunk(self, chunk_id: str, length: int, *, snapshot: str | None = None) -> bytes:
        """A chunk's plaintext, authenticated and checked against its id and length.

        IntegrityError naming the snapshot and object on any mismatch or absence."""
        payload = self.chunks.read_payload(chunk_id, snapshot=snapshot)
        return self.chunks.check(chunk_id, length, payload, snapshot=snapshot)

    def check_payload(
        self, chunk_id: str, length: int, payload: bytes, *, snapshot: str | None = None
    ) -> bytes:
        """Decompress a chunk payload and check its id and length."""
        return self.chunks.check(chunk_id, length, payload, snapshot=snapshot)

    def integrity(self, name: str, snapshot: str | None, what: str) -> IntegrityError:
        """The IntegrityError for object `name` (of `snapshot`) that `what` went wrong with."""
        return integrity_error(name, snapshot, what)

    def chunk_id(self, data: bytes | memoryview) -> str:
        return crypto.chunk_id(self.mac_key, data, self.config.cipher)

    def chunk_ids(self) -> set[str]:
        """Ids of every chunk in the store: loose ones (one listing) and indexed ones (the
        index reloaded)."""
        return self.chunks.ids()

    # -- snapshots ------------------------------------------------------------------

    def snapshot_ids(self) -> list[str]:
        return sorted(obj.key[len(SNAPSHOTS_PREFIX) :] for obj in self.store.list(SNAPSHOTS_PREFIX))

    def manifest(self, snapshot_id: str) -> Manifest:
        """The authenticated manifest; IntegrityError when damaged, RecoverydError when absent."""
        cached = self._manifests.get(snapshot_id)
        if cached is not None:
            return cached
        name = manifest_key(snapshot_id)
        try:
            payload = self.get_object(name, ObjectType.MANIFEST, snapshot=snapshot_id)
        except NotFoundError:
            raise SnapshotNotFoundError(
                f"snapshot {snapshot_id}: not found in target {self.name}; "
                "list them with `recoveryd snapshots`"
            ) from None
        try:
            m = decode_manifest(chunker.decompress(payload))
        except (chunker.PayloadError, ValueError) as exc:
            raise integrity_error(name, snapshot_id, f"is malformed ({exc})") from None
        if m.id != snapshot_id:
            raise integrity_error(name, snapshot_id, "names another snapshot")
        self._manifests[snapshot_id] = m
        return m

    def write_manifest(self, manifest: Manifest) -> int:
        """Commit a snapshot: the manifest is the last object a backup writes.

        Refuses (nothing committed) when the stored `config` is no longer the one
        this snapshot's chunks were named for: a concurrent first backup on a
        store without conditional writes replaced it."""
        self._check_config_unchanged()
        payload = chunker.compress(manifest.to_bytes())
        size = self.put_object(
            manifest_key(manifest.id), ObjectType.MANIFEST, payload, retention=self.retention()
        )
        self._manifests[manifest.id] = manifest
        return size

    def _check_config_unchanged(self) -> None:
        # `config` is sealed once, at init, by the key named in its header (rotating
        # or re-wrapping keys never reseals it), so another key there means another
        # repository; the same key is confirmed by decrypting. No master key needed.
        blob = self.store.get(CONFIG_KEY)
        same = parse_header(blob, CONFIG_KEY, None).key_id.hex() == self.config_key_id
        if same:
            plain = self.open_blob(CONFIG_KEY, blob, ObjectType.CONFIG)
            same = RepoConfig.from_bytes(plain).id == self.config.id
        if not same:
            raise RecoverydError(
                f"target {self.name}: the repository was initialised by another process "
                "while this snapshot was written; nothing was committed; run the backup again"
            )

    def snapshots(
        self,
        source: str | None = None,
        *,
        on_damaged: Callable[[IntegrityError], None] | None = None,
    ) -> list[SnapshotInfo]:
        """Every committed snapshot, oldest first (from the store alone).

        A manifest that cannot be read raises IntegrityError naming it; with `on_damaged`,
        it is reported there instead and the others are still listed."""
        out = []
        for sid in self.snapshot_ids():
            try:
                out.append(self.manifest(sid).info(self.name))
            except IntegrityError as exc:
                if on_damaged is None:
                    raise
                on_damaged(exc)
        if source is not None:
            out = [s for s in out if s.source == source]
        return sorted(out, key=lambda s: (s.time, s.id))

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of a snapshot given its id or a unique prefix of it.

        SnapshotNotFoundError when none matches, AmbiguousSnapshotError when several do."""
        ids = self.snapshot_ids()
        if id_or_prefix in ids:
            return id_or_prefix
        matches = [i for i in ids if i.startswith(id_or_prefix)] if id_or_prefix else []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise SnapshotNotFoundError(
                f"snapshot {id_or_prefix}: not found in target {self.name}; "
                "list them with `recoveryd snapshots`"
            )
        raise AmbiguousSnapshotError(
            f"snapshot {id_or_prefix}: prefix matches {len(matches)} snapshots; give more digits"
        )

    def lock(self, *, exclusive: bool = False, operation: str = "") -> locks.Lock:
        """Take a shared (or exclusive) lock; RefusedError naming the holder on conflict."""
        return locks.acquire(self, exclusive=exclusive, operation=operation)

    def restore_stream(
        self, snapshot_id: str, *, readahead: int = 8, part: str | None = None
    ) -> RestoreReader:
        """A reader of the snapshot's stream (of its part named `part`), holding a shared
        lock until closed or at EOF.

        Chunks are fetched by `concurrency` threads, at most `readahead` ahead;
        each is authenticated before any of its bytes is returned, and the first
        bad one raises IntegrityError naming the snapshot and object. KeyError when
        the snapshot has no part `part`."""
        sid = self.resolve(snapshot_id)
        m = self.manifest(sid)
        which = None if part is None else m.part(part)
        lock = self.lock(operation="restore")
        return RestoreReader(
            self, m, lock=lock, workers=self.concurrency, readahead=readahead, part=which
        )

    def verify(
        self,
        ids: Sequence[str] = (),
        read_data: bool | Literal["sample"] = False,
        tally: Tally = NO_TALLY,
    ) -> VerifyReport:
        """Check snapshots (all when `ids` is empty); see `repo.verify`."""
        return verify(self, ids, read_data, tally)

    def copy_snapshot(
        self, snapshot_id: str, dest: Repository, tally: Tally = NO_TALLY
    ) -> SnapshotInfo:
        """Copy one snapshot into `dest`, re-encrypted under its keys, deduplicated there."""
        return copy_snapshot(self, snapshot_id, dest, tally)

    def forget(
        self,
        policy_by_source: Mapping[str, Policy],
        *,
        dry_run: bool = False,
        protect: Iterable[str] = (),
    ) -> PruneReport:
        """Apply a retention policy per source (sources not named keep everything), then prune;
        the newest snapshot of each source and the ids in `protect` are kept."""
        return forget_and_prune(self, policy_by_source, dry_run=dry_run, protect=set(protect))

    def prune(self, *, dry_run: bool = False) -> PruneReport:
        """Delete unreferenced chunks and leftovers of crashed backups (see `repo.prune`)."""
        return forget_and_prune(self, {}, dry_run=dry_run)

    def forget_manifest(self, snapshot_id: str) -> None:
        self.store.delete(manifest_key(snapshot_id))
        self._manifests.pop(snapshot_id, None)

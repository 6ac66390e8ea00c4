"""`key generate` and `key rotate`: the master key file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recoveryd.app import wiring
from recoveryd.atomic import fsync_dir
from recoveryd.config import LoadedConfig
from recoveryd.errors import ConfigError, KeyFileError


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def generate_key(cfg: LoadedConfig, *, force: bool = False, out: Path | None = None) -> Path:
    """Create `encryption.key_file` (or `out`), mode 0600. An existing key is kept unless
    `force`, and even then moved aside (`<file>.replaced-<time>`), never destroyed.
    A `credential:NAME` key file is systemd's read-only copy: the key is then generated
    at `out`, the file the unit's `LoadCredential=` names."""
    from recoveryd.repo.keys import generate_master_key

    if out is None and wiring.key_is_credential(cfg):
        raise ConfigError(
            f"encryption.key_file: {cfg.config.encryption.key_file} is the copy systemd "
            "hands over; generate the key at the file LoadCredential= names: "
            "`recoveryd key generate --out /etc/recoveryd/keys/master.key`"
        )
    path = out if out is not None else wiring.key_path(cfg)
    if path.exists() and force:
        path.rename(path.with_name(f"{path.name}.replaced-{_stamp()}"))
    generate_master_key(path)
    return path


@dataclass(frozen=True)
class KeyRotation:
    key_file: str
    previous: str
    targets: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"key_file": self.key_file, "previous": self.previous, "targets": list(self.targets)}


def rotate_key(cfg: LoadedConfig) -> KeyRotation:
    """A new master key; every target's data keys re-wrapped under it, plus a new data key
    for new writes. Old snapshots stay restorable with the new key alone.

    Crash-safe: the new key is written to `<file>.new` first and only replaces
    the key file once every repository is re-wrapped; running it again after
    an interruption resumes with the same new key. The old key is kept as
    `<file>.retired-<time>` (mode 0600): destroy it once the new key is copied
    offline.
    """
    from recoveryd.repo.keys import generate_master_key, load_master_key

    if wiring.key_is_credential(cfg):
        raise ConfigError(
            f"encryption.key_file: {cfg.config.encryption.key_file} is the read-only copy "
            "systemd hands over; rotate with a configuration whose key_file is the file "
            "LoadCredential= names (e.g. /etc/recoveryd/keys/master.key)"
        )
    path = wiring.key_path(cfg)
    old = wiring.master_key(cfg)
    pending = path.with_name(path.name + ".new")
    new = load_master_key(pending) if pending.exists() else generate_master_key(pending)
    done: list[str] = []
    for name in wiring.target_names(cfg):
        from recoveryd.repo.layout import CONFIG_KEY
        from recoveryd.repo.repository import Repository

        store = wiring.open_store(cfg, name)
        try:
            if not store.exists(CONFIG_KEY):
                continue
            try:
                repo = Repository.open(store, old, name=name)
            except KeyFileError:
                Repository.open(store, new, name=name)  # already re-wrapped in an earlier run
                done.append(name)
                continue
            repo.rotate_data_key()
            repo.rewrap(new)
            done.append(name)
        finally:
            store.close()
    retired = path.with_name(f"{path.name}.retired-{_stamp()}")
    path.replace(retired)
    pending.replace(path)
    fsync_dir(path.parent)
    return KeyRotation(str(path), str(retired), tuple(done))

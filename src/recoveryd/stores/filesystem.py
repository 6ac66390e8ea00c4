"""Object store in a local directory: key `a/b/c` is the file `<root>/a/b/c`.

Writes are atomic and durable: the data goes to a temporary file in the
destination directory (named `.tmp-*`, never listed), is fsynced, then renamed
over the key (or hard-linked to it for `if_absent`, which fails if the key
exists, so conditional puts are real), and the directory is fsynced. A crash
leaves at worst a stray `.tmp-*` file, never a partial object; prune removes
those once they are older than its grace period (`remove_stale_temp_files`).

Deletes are durable too (the directory is fsynced after the unlink): prune
deletes a forgotten snapshot's manifest before the chunks only it referenced, and
a manifest brought back by a power loss while its chunks stayed deleted would be
a listed snapshot that cannot be restored. There is no Object Lock: retention is accepted and
ignored, and `capabilities().object_lock` is False.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recoveryd.atomic import atomic_writer, fsync_dir
from recoveryd.errors import NotFoundError, PreconditionFailedError, StoreError
from recoveryd.stores.base import Capabilities, ObjectInfo, Retention

TMP_PREFIX = ".tmp-"


class FilesystemStore:
    """ObjectStore on a directory. Thread-safe (every operation is self-contained)."""

    def __init__(self, root: Path | str, name: str) -> None:
        self.root = Path(root)
        self.name = name

    # ------------------------------------------------------------------ paths

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") or p.startswith(TMP_PREFIX) for p in parts):
            raise StoreError(f"target {self.name}: invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def _fail(self, exc: OSError, action: str, key: str) -> StoreError:
        if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
            return NotFoundError(f"target {self.name}: object {key} not found")
        reason = exc.strerror or str(exc)
        return StoreError(
            f"target {self.name}: cannot {action} {key} under {self.root}: {reason}; "
            "check the directory's permissions and free space"
        )

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self._fail(exc, "read", key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        path = self._path(key)
        try:
            with path.open("rb") as f:
                f.seek(offset)
                return f.read(max(length, 0))
        except OSError as exc:
            raise self._fail(exc, "read", key) from exc

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except OSError as exc:
            raise self._fail(exc, "stat", key) from exc
        if not path.is_file():
            raise NotFoundError(f"target {self.name}: object {key} not found")
        return ObjectInfo(key=key, size=st.st_size)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = prefix.rpartition("/")[0]
        start = self.root.joinpath(*base.split("/")) if base else self.root
        rel = base + "/" if base else ""
        try:
            yield from self._walk(start, rel, prefix)
        except OSError as exc:
            raise self._fail(exc, "list", prefix) from exc

    def _walk(self, directory: Path, rel: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            key = rel + entry.name
            if entry.name.startswith(TMP_PREFIX):
                continue
            if entry.is_dir(follow_symlinks=False):
                if key.startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(Path(entry.path), key + "/", prefix)
            elif entry.is_file() and key.startswith(prefix):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # deleted while listing
                yield ObjectInfo(
                    key=key,
                    size=st.st_size,
                    modified=datetime.fromtimestamp(st.st_mtime, UTC),
                )

    # ------------------------------------------------------------------ writes

    def put(
        self, key: str, data: bytes, *, if_absent: bool = False, retention: Retention | None = None
    ) -> None:
        path = self._path(key)
        try:
            self._make_dirs(path.parent)
            with atomic_writer(path, mode=0o644, exclusive=if_absent, tmp_prefix=TMP_PREFIX) as f:
                f.write(data)
        except FileExistsError as exc:
            raise PreconditionFailedError(
                f"target {self.name}: object {key} already exists"
            ) from exc
        except OSError as exc:
            raise self._fail(exc, "write", key) from exc

    def _make_dirs(self, directory: Path) -> None:
        """Create missing directories up to the root and fsync the parent of each new one.

        The root's parent must exist: an unmounted backup volume must not turn
        into a directory on the system disk."""
        if not self.root.parent.is_dir():
            raise StoreError(
                f"target {self.name}: directory {self.root.parent} does not exist; "
                "create it or mount the backup volume"
            )
        missing = []
        d = directory
        while not d.is_dir() and d != self.root.parent:
            missing.append(d)
            d = d.parent
        for new in reversed(missing):
            try:
                new.mkdir()
            except FileExistsError:
                continue
            fsync_dir(new.parent)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
            fsync_dir(path.parent)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail(exc, "delete", key) from exc

    def remove_stale_temp_files(self, older_than: timedelta, *, now: float | None = None) -> int:
        """Delete the `.tmp-*` files of writes that died (killed backup or copy) last modified
        over `older_than` ago; a younger one may be a write still running. Returns how many."""
        limit = (time.time() if now is None else now) - older_than.total_seconds()
        removed = 0
        try:
            for dirpath, _dirs, files in os.walk(self.root):
                for name in files:
                    if not name.startswith(TMP_PREFIX):
                        continue
                    path = Path(dirpath, name)
                    with contextlib.suppress(FileNotFoundError):
                        if path.lstat().st_mtime < limit:
                            path.unlink()
                            removed += 1
        except OSError as exc:
            raise self._fail(exc, "clean up temporary files in", ".") from exc
        return removed

    def extend_retention(self, key: str, retention: Retention) -> None:
        self.stat(key)  # a missing object is still an error; retention itself is not supported

    def capabilities(self) -> Capabilities:
        return Capabilities(conditional_put=True, object_lock=False)

    def close(self) -> None:
        return None

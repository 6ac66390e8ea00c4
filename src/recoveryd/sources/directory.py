"""Directories: a streamed pax tar made by GNU tar, restored by Python's tarfile.

Snapshot: `tar --format=pax` through the CommandRunner (so it also runs on a
remote host), preserving modes, owners (names and ids), mtimes, symlinks and
empty directories, with `exclude` patterns (GNU tar wildcards, matched
against member names such as `./cache/x` and against each name component,
so `*.tmp` excludes every such file and `./cache` one directory). The stream is made deterministic
for deduplication: members sorted by name, no atime/ctime records, and pax
header names without the process id. GNU tar exits 1 when a file changed while
it was read; that is accepted (the reader's `exit_status` is then 1), not a
failure: the directory is live, and every file in the stream is complete.

Before the stream starts, a tree holding what a restore could not recreate
(block or character device nodes) is refused, naming them, unless `exclude`
leaves them out: a backup must never succeed that cannot come back. Symlinks
are stored as links, whatever they point to (inside the tree, outside it,
nowhere), and are restored as such links (GNU tar does the same).

Restore: into a directory (created with its parents when missing, refused,
naming what is there, when it is not empty), member by member into a hidden
staging folder beside it (`.recoveryd-restoring-<name>-<random>`; inside it when
it is a mount point or a symlink), renamed into place only once the whole
stream was read and authenticated: a stream that fails part way, SIGINT, SIGTERM
or SIGHUP leave nothing behind; a killed process leaves only the staging
folder, which the next restore to the same directory removes with a warning.
Nothing is ever written through a link: absolute names, `..`, any member on or
under an already extracted symlink, and hard links to anything but a regular
file inside the tree are refused; files lose set-uid and set-gid bits
(sources/confined_tar.py). Owners are restored when running as root (by numeric id).
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import logging
import os
import secrets
import shutil
import stat
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from recoveryd.errors import SourceError, UsageError
from recoveryd.sources.base import ByteReader, CommandRunner, SourceInfo, refuse_uri
from recoveryd.sources.confined_tar import extract_confined
from recoveryd.sources.procstream import ProcessStream, start_tool

STREAM_FORMAT = "tar-pax"
STAGING_PREFIX = ".recoveryd-restoring-"
_TAR_CHANGED = 1  # GNU tar: "some files differ" (changed while being read)
_TAR_BLOCK = 512
_MEMBER_HEADERS = 3 * _TAR_BLOCK  # pax extended header (name, header, mtime) + ustar header
_TAR_END = 20 * _TAR_BLOCK  # end-of-archive blocks, padded to GNU tar's record size

log = logging.getLogger("recoveryd.sources")


class DirectorySource:
    """A directory tree on the host where `runner` runs commands."""

    kind = "directory"

    def __init__(
        self, name: str, path: str, *, runner: CommandRunner, exclude: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.path = path
        self._runner = runner
        self._exclude = list(exclude)

    def snapshot(self) -> ProcessStream:
        """Start `tar -c` of the directory; SourceError when it does not exist."""
        status, out, _ = self._runner.run(["tar", "--version"], timeout=30)
        version = out.decode(errors="replace").splitlines()[0] if status == 0 and out else "tar"
        status, _, _ = self._runner.run(["test", "-d", self.path], timeout=30)
        if status != 0:
            raise SourceError(f"source {self.name}: directory {self.path} does not exist")
        estimate = self._scan()
        argv = [
            "tar",
            "--create",
            "--file=-",
            "--format=pax",
            "--sort=name",
            "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
            f"--directory={self.path}",
            *(f"--exclude={pattern}" for pattern in self._exclude),
            ".",
        ]
        proc = start_tool(self.name, self._runner, argv)
        info = SourceInfo(
            kind=self.kind,
            stream_format=STREAM_FORMAT,
            engine_version=None,
            consistency={},
            extra={"path": self.path, "tool_version": version},
            expected_size=estimate,
        )
        return ProcessStream(
            source=self.name, tool="tar", proc=proc, info=info, ok_statuses=(0, _TAR_CHANGED)
        )

    def _scan(self) -> int | None:
        """One walk of the tree: refuses device nodes that `exclude` does not leave out (a
        restore cannot recreate them: tarfile refuses them, creating one needs root), and
        returns an estimate of the tar stream's size (for progress: data rounded up to tar
        blocks, plus the headers of each member); None when `find` listed nothing (a host
        whose `find` lacks `-printf`)."""
        devices: list[str] = []
        estimate = _TAR_END
        seen = False
        for record in self._walk():
            seen = True
            kind, _, rest = record.decode(errors="replace").partition(" ")
            size, _, rel = rest.partition(" ")
            member = f"./{rel}" if rel else "."
            if not kind or excluded(member, self._exclude):
                continue
            if kind in ("b", "c"):
                devices.append(member)
            data = int(size) if kind == "f" and size.isdigit() else 0
            estimate += _MEMBER_HEADERS + -(-data // _TAR_BLOCK) * _TAR_BLOCK
        if devices:
            shown = ", ".join(devices[:3]) + (
                f" and {len(devices) - 3} more" if devices[3:] else ""
            )
            raise SourceError(
                f"source {self.name}: {self.path} holds device nodes a restore cannot recreate "
                f"({shown}); add them to sources.{self.name}.exclude"
            )
        return estimate if seen else None

    def _walk(self) -> Iterator[bytes]:
        """`type size relative-path` of every entry under the directory, streamed from
        `find` (a tree of millions of files is never held in memory at once)."""
        argv = ["find", self.path, "-printf", "%y %s %P\\0"]
        proc = start_tool(self.name, self._runner, argv)
        try:
            pending = b""
            while block := proc.read(65536):
                *records, pending = (pending + block).split(b"\0")
                yield from records
            # `find` exits 1 when a file vanished or a folder was unreadable during the walk:
            # on a live tree that is normal, and what tar then cannot read, tar reports
            proc.wait(60)
        except BaseException:
            proc.kill()
            raise

    def restore(self, stream: ByteReader, dest: str, info: SourceInfo) -> None:
        """Extract into `dest` (created with its parents if missing; must be empty).

        The tree is extracted into a staging folder beside `dest` and renamed into place
        once complete; the staging folder goes on any failure or signal. One a killed
        process left behind is removed, with a warning, by the next restore to `dest`."""
        if info.stream_format != STREAM_FORMAT:
            raise SourceError(f"source {self.name}: cannot restore a {info.stream_format} stream")
        refuse_uri(self.name, "directory", dest)
        root = Path(dest)
        _remove_leftovers(root)
        _refuse_occupied(self.name, root)
        created = _make_parents(self.name, root.parent)
        staging = _staging_for(root)
        try:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                    extract_confined(tar, staging)
            except (tarfile.TarError, OSError) as exc:
                raise SourceError(f"source {self.name}: restore into {root} failed: {exc}") from exc
            _move_into_place(staging, root)
        except BaseException:
            # a stream that fails part way (damaged chunk, dump error, interruption) leaves
            # nothing behind: no truncated file may pass for restored data
            shutil.rmtree(staging, ignore_errors=True)
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise


def excluded(member: str, patterns: Sequence[str]) -> bool:
    """Whether GNU tar's `--exclude` (wildcards, unanchored: matched against the member
    name and against every tail of it after a `/`) leaves out `member` (`./a/b`)."""
    parts = member.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(t, p) for p in patterns for t in tails) or any(
        excluded("/".join(parts[:i]), patterns) for i in range(2, len(parts))
    )


def _refuse_occupied(source: str, root: Path) -> None:
    """UsageError (exit 2) naming what is in the way when `root` is not a new or empty directory."""
    if not root.exists() and not root.is_symlink():
        return
    if root.is_dir():
        entries = sorted(p.name for p in root.iterdir())
        if not entries:
            return
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if entries[3:] else "")
        raise UsageError(
            f"source {source}: {root} is not empty (it holds {shown}); "
            "restore into a new or empty directory"
        )
    raise UsageError(
        f"source {source}: {root} exists and is not a directory; "
        "restore into a new or empty directory"
    )


def _make_parents(source: str, parent: Path) -> list[Path]:
    """Create the missing directories up to `parent`; returns them, outermost first."""
    missing = []
    d = parent
    while not d.exists():
        missing.append(d)
        d = d.parent
    missing.reverse()
    try:
        for folder in missing:
            folder.mkdir()
    except OSError as exc:
        raise SourceError(
            f"source {source}: cannot create directory {parent} ({exc.strerror})"
        ) from None
    return missing


def _staging_for(root: Path) -> Path:
    """A new staging folder beside `root`; inside it when `root` exists and a rename could
    not replace it (a mount point, a symlink, a parent this user cannot write)."""
    token = secrets.token_hex(8)
    if root.exists() and (
        root.is_symlink() or root.is_mount() or not os.access(root.parent, os.W_OK | os.X_OK)
    ):
        staging = root / f"{STAGING_PREFIX}{token}"
    else:
        staging = root.parent / f"{STAGING_PREFIX}{root.name}-{token}"
    staging.mkdir(mode=0o700)
    return staging


def _remove_leftovers(root: Path) -> None:
    """Remove the staging folders a killed restore into `root` left, with a warning each."""
    found: list[Path] = []
    if root.parent.is_dir():
        found += root.parent.glob(f"{STAGING_PREFIX}{glob.escape(root.name)}-*")
    if root.is_dir():
        found += root.glob(f"{STAGING_PREFIX}*")
    for staging in found:
        if staging.is_dir() and not staging.is_symlink():
            shutil.rmtree(staging, ignore_errors=True)
            log.warning("removed %s: staging folder left by an interrupted restore", staging)


def _move_into_place(staging: Path, root: Path) -> None:
    """Put a completely extracted tree from `staging` at `root`: one rename when `root` is
    missing or an empty directory that can be removed; else (a mount point, staging inside
    it) entry by entry, then `root` gets the mode, owner and times of the snapshot's top."""
    if staging.parent != root:
        with contextlib.suppress(OSError):
            root.rmdir()  # empty (checked before); a mount point or busy folder stays
        if not root.exists():
            staging.rename(root)
            return
    top = staging.stat()
    for entry in staging.iterdir():
        entry.rename(root / entry.name)
    staging.rmdir()
    os.chmod(root, stat.S_IMODE(top.st_mode))  # noqa: PTH101
    if os.geteuid() == 0:
        os.chown(root, top.st_uid, top.st_gid)
    os.utime(root, ns=(top.st_atime_ns, top.st_mtime_ns))

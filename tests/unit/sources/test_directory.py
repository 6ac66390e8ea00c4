"""Directory source: pax tar streams made by GNU tar, confined restores."""

from __future__ import annotations

import io
import logging
import os
import stat
import tarfile
from pathlib import Path

import pytest

from recoveryd.errors import IntegrityError, SourceError, UsageError
from recoveryd.sources.base import SourceInfo
from recoveryd.sources.directory import STREAM_FORMAT, DirectorySource, excluded
from recoveryd.sources.local import LocalRunner

INFO = SourceInfo(kind="directory", stream_format=STREAM_FORMAT)


def _tree(root: Path) -> None:
    (root / "tiles" / "z1").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "tiles" / "z1" / "0.png").write_bytes(os.urandom(5000))
    (root / "tiles" / "index.json").write_text('{"名": 1}')
    script = root / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o750)
    secret = root / "private.key"
    secret.write_text("k")
    secret.chmod(0o600)
    os.chown(secret, 1234, 5678)
    (root / "latest").symlink_to("tiles/z1")
    os.link(root / "tiles" / "index.json", root / "index-hardlink.json")
    (root / "cache").mkdir()
    (root / "cache" / "tmp.bin").write_bytes(b"skip me")
    (root / "scratch.tmp").write_text("skip")
    os.utime(root / "tiles" / "z1" / "0.png", ns=(1_600_000_000_123_456_789,) * 2)
    os.utime(root / "empty", (1_500_000_000, 1_500_000_000))


def _meta(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path), st.st_uid, st.st_gid)
        else:
            data = path.read_bytes() if path.is_file() else b""
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime), data)
    return out


def _snapshot(src: DirectorySource) -> bytes:
    reader = src.snapshot()
    out = io.BytesIO()
    while data := reader.read(65536):
        out.write(data)
    reader.finish()
    return out.getvalue()


def test_round_trip_preserves_modes_owners_times_links_and_empty_dirs(tmp_path: Path) -> None:
    """A restored directory equals the original in content, modes, owners, mtimes,
    symlinks, hard links and empty directories; excluded paths are left out."""
    root = tmp_path / "src"
    root.mkdir()
    _tree(root)
    src = DirectorySource(
        "geo-tiles", str(root), runner=LocalRunner(), exclude=["./cache", "*.tmp"]
    )
    data = _snapshot(src)
    dest = tmp_path / "restored"
    src.restore(io.BytesIO(data), str(dest), INFO)
    expected = {
        k: v for k, v in _meta(root).items() if not k.startswith("cache") and k != "scratch.tmp"
    }
    assert _meta(dest) == expected
    assert (dest / "private.key").stat().st_uid == 1234
    assert (dest / "index-hardlink.json").stat().st_ino == (dest / "tiles/index.json").stat().st_ino
    # sub-second mtimes survive to the microsecond (tarfile keeps them as floats)
    assert abs((dest / "tiles/z1/0.png").stat().st_mtime_ns - 1_600_000_000_123_456_789) < 1000


def test_unchanged_directory_gives_an_identical_stream(tmp_path: Path) -> None:
    """Two snapshots of an unchanged directory are byte-identical (sorted members, no
    process ids or access times in headers), so they deduplicate completely."""
    root = tmp_path / "src"
    root.mkdir()
    _tree(root)
    src = DirectorySource("geo", str(root), runner=LocalRunner())
    first = _snapshot(src)
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.read_bytes()  # touches atimes
    assert _snapshot(src) == first


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A source directory that does not exist fails snapshot() naming the source."""
    with pytest.raises(SourceError, match=r"source geo: directory .*/nope does not exist"):
        DirectorySource("geo", str(tmp_path / "nope"), runner=LocalRunner()).snapshot()


def test_restore_refuses_a_non_empty_destination_naming_what_is_there(tmp_path: Path) -> None:
    """Restore never mixes a snapshot into an existing non-empty directory, and the refusal
    names what is in the way."""
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "x").write_text("keep")
    src = DirectorySource("geo", str(tmp_path), runner=LocalRunner())
    with pytest.raises(UsageError, match=r"dest is not empty \(it holds x\)"):
        src.restore(io.BytesIO(b""), str(tmp_path / "dest"), INFO)
    assert (tmp_path / "dest" / "x").read_text() == "keep"


def _evil_tar(*members: tuple[str, str, str]) -> bytes:
    """A tar built from (kind, name, target/content) triples."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value.encode()))
            else:
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = value
                tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize(
    "members",
    [
        [("file", "/abs/evil", "x")],
        [("file", "../evil", "x")],
        [("file", "a/../../evil", "x")],
        [("lnk", "pw", "/etc/hostname")],
        [("lnk", "pw", "../outside")],
        [("sym", "out", "../outside"), ("file", "out", "x")],
        [("sym", "out", ".."), ("file", "out/evil", "x")],
        [("sym", "out", "../outside"), ("lnk", "pw", "out")],
    ],
    ids=[
        "absolute",
        "dotdot",
        "nested-dotdot",
        "hardlink-abs",
        "hardlink-up",
        "file-onto-symlink",
        "file-under-symlink",
        "hardlink-to-symlink",
    ],
)
def test_restore_refuses_members_escaping_the_destination(
    tmp_path: Path, members: list[tuple[str, str, str]]
) -> None:
    """Absolute names, `..`, hard links to anything but a file inside, and any member on or
    under an extracted symlink are refused: nothing is written outside the destination,
    never through a link."""
    (tmp_path / "outside").write_text("original")
    src = DirectorySource("geo", str(tmp_path), runner=LocalRunner())
    dest = tmp_path / "dest"
    with pytest.raises(SourceError, match="source geo: restore into"):
        src.restore(io.BytesIO(_evil_tar(*members)), str(dest), INFO)
    assert not (tmp_path / "evil").exists()
    assert (tmp_path / "outside").read_text() == "original"
    assert (tmp_path / "outside").stat().st_nlink == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside"]


def test_restore_refuses_writing_through_a_symlink(tmp_path: Path) -> None:
    """A member whose path goes through a symlink (even one pointing inside) that would
    land outside is refused."""
    target = tmp_path / "victim"
    target.mkdir()
    src = DirectorySource("geo", str(tmp_path), runner=LocalRunner())
    evil = _evil_tar(("sym", "d", "."), ("file", "d/../../victim/pwned", "x"))
    with pytest.raises(SourceError):
        src.restore(io.BytesIO(evil), str(tmp_path / "dest"), INFO)
    assert list(target.iterdir()) == []


class _FailingAfter(io.RawIOBase):
    """The first `limit` bytes of `data`, then the error a damaged chunk raises."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data = io.BytesIO(data)
        self._left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            raise IntegrityError("snapshot s: object data/ab failed authentication")
        chunk = self._data.read(min(size if size >= 0 else self._left, self._left))
        self._left -= len(chunk)
        return chunk


@pytest.mark.parametrize("existing", [False, True], ids=["new-dest", "empty-dest"])
def test_a_stream_failing_part_way_leaves_no_partial_files(tmp_path: Path, existing: bool) -> None:
    """When the snapshot stream fails in the middle (a damaged chunk), the restore raises
    and the destination holds nothing: no truncated file passes for restored data; a
    destination that did not exist is not left behind. A complete restore then gives the
    destination the mode and time the snapshot recorded for its top directory."""
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    for i in range(4):
        (src_dir / f"f{i}.bin").write_bytes(os.urandom(200_000))
    src_dir.chmod(0o750)
    os.utime(src_dir, (1_500_000_000, 1_500_000_000))
    data = _snapshot(DirectorySource("geo", str(src_dir), runner=LocalRunner()))
    dest = tmp_path / "dest"
    if existing:
        dest.mkdir()
    src = DirectorySource("geo", str(src_dir), runner=LocalRunner())
    with pytest.raises(IntegrityError):
        src.restore(_FailingAfter(data, len(data) * 3 // 4), str(dest), INFO)
    if existing:
        assert list(dest.iterdir()) == []
    else:
        assert not dest.exists()
    src.restore(io.BytesIO(data), str(dest), INFO)
    assert _meta(dest) == _meta(src_dir)
    assert (dest.stat().st_mode & 0o7777, int(dest.stat().st_mtime)) == (0o750, 1_500_000_000)


def test_symlinks_pointing_anywhere_are_backed_up_and_restored_as_links(tmp_path: Path) -> None:
    """A tree holding symlinks that point outside it (relative and absolute) and nowhere is
    backed up and restored completely: the links come back as the same links, every file
    comes back, and nothing is written where they point."""
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "settings.ini").write_text("outside")
    root = tmp_path / "src"
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "local.ini").write_text("inside")
    (root / "shared").symlink_to("../shared")
    (root / "conf" / "settings.ini").symlink_to(outside / "settings.ini")
    (root / "dangling").symlink_to("/nonexistent/target")
    (root / "zz-after-links.txt").write_text("last")
    src = DirectorySource("geo", str(root), runner=LocalRunner())
    dest = tmp_path / "restore" / "geo"
    src.restore(io.BytesIO(_snapshot(src)), str(dest), INFO)
    assert _meta(dest) == _meta(root)
    assert os.readlink(dest / "conf" / "settings.ini") == str(outside / "settings.ini")
    assert sorted(p.name for p in outside.iterdir()) == ["settings.ini"]
    assert (outside / "settings.ini").read_text() == "outside"


def test_a_tree_holding_a_device_node_is_refused_at_backup_unless_excluded(
    tmp_path: Path,
) -> None:
    """A device node cannot be restored (tarfile refuses it, creating one needs root), so the
    backup is refused before any byte is read, naming the node and the setting that leaves
    it out; excluded, the tree backs up and restores."""
    root = tmp_path / "src"
    (root / "dev").mkdir(parents=True)
    (root / "data.txt").write_text("x")
    try:
        os.mknod(root / "dev" / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root (CAP_MKNOD)")
    src = DirectorySource("geo", str(root), runner=LocalRunner())
    with pytest.raises(
        SourceError,
        match=r"source geo: .* holds device nodes a restore cannot recreate \(\./dev/null\); "
        r"add them to sources\.geo\.exclude",
    ):
        src.snapshot()
    kept = DirectorySource("geo", str(root), runner=LocalRunner(), exclude=["./dev"])
    dest = tmp_path / "dest"
    kept.restore(io.BytesIO(_snapshot(kept)), str(dest), INFO)
    assert sorted(p.name for p in dest.iterdir()) == ["data.txt"]


@pytest.mark.parametrize(
    ("member", "patterns", "expected"),
    [
        ("./dev/null", ["./dev"], True),
        ("./dev/null", ["*.tmp"], False),
        ("./a/b/x.tmp", ["*.tmp"], True),
        ("./a/dev/null", ["dev"], True),
        ("./a/b/null", ["./a"], True),
        ("./ab/null", ["./a"], False),
    ],
)
def test_exclude_matching_follows_gnu_tar(member: str, patterns: list[str], expected: bool) -> None:
    """Exclude patterns match a member name, any tail of it after a `/`, or an ancestor,
    like GNU tar's unanchored `--exclude`."""
    assert excluded(member, patterns) is expected


@pytest.mark.parametrize("where", ["beside", "inside"])
def test_a_staging_folder_left_by_a_killed_restore_is_removed_with_a_warning(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What a killed restore leaves (its staging folder beside the destination, or inside
    it as older versions made it) does not block the next restore: it is removed, with a
    warning naming it, and the restore succeeds."""
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    (src_dir / "a.txt").write_text("a")
    src = DirectorySource("geo", str(src_dir), runner=LocalRunner())
    dest = tmp_path / "dest"
    if where == "inside":
        leftover = dest / ".recoveryd-restoring-0123456789abcdef"
    else:
        leftover = tmp_path / ".recoveryd-restoring-dest-0123456789abcdef"
    (leftover / "half").mkdir(parents=True)
    (leftover / "half" / "big.bin").write_bytes(b"x" * 1000)
    with caplog.at_level(logging.WARNING):
        src.restore(io.BytesIO(_snapshot(src)), str(dest), INFO)
    assert not leftover.exists()
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt"]
    assert f"removed {leftover}: staging folder left by an interrupted restore" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "src"]

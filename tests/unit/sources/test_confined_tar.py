"""Confined tar extraction, with tarfile's extraction filters and without them (the way
taken on Python before 3.11.4, such as Debian 12's 3.11.2): the same members are
refused, the same tree is written."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest

from recoveryd.sources.confined_tar import HAS_FILTERS, RefusedMember, extract_confined

WAYS = [True, False] if HAS_FILTERS else [False]
WAY_IDS = ["filters", "fallback"] if HAS_FILTERS else ["fallback"]
DEBIAN_PYTHON = Path("/usr/bin/python3.11")
SRC = Path(__file__).resolve().parents[3] / "src"


def _tar(*members: tuple[str, str, str]) -> bytes:
    """A tar built from (kind, name, target/content) triples."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                info.mode = 0o640
                tar.addfile(info, io.BytesIO(value.encode()))
                continue
            info.type = {
                "sym": tarfile.SYMTYPE,
                "lnk": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "blk": tarfile.BLKTYPE,
            }[kind]
            info.linkname = value
            tar.addfile(info)
    return buf.getvalue()


def _extract(data: bytes, dest: Path, *, filters: bool) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        extract_confined(tar, dest, filters=filters)


EVIL = {
    "absolute": [("file", "/abs/evil", "x")],
    "dotdot": [("file", "../evil", "x")],
    "nested-dotdot": [("file", "a/../../evil", "x")],
    "hardlink-abs": [("lnk", "pw", "/etc/hostname")],
    "hardlink-up": [("lnk", "pw", "../outside")],
    "hardlink-missing": [("lnk", "pw", "nothing")],
    "file-onto-symlink": [("sym", "out", "../outside"), ("file", "out", "x")],
    "file-under-symlink": [("sym", "out", ".."), ("file", "out/evil", "x")],
    "hardlink-to-symlink": [("sym", "out", "../outside"), ("lnk", "pw", "out")],
    "through-inner-symlink": [("sym", "d", "."), ("file", "d/../../evil", "x")],
    "char-device": [("chr", "null", "")],
    "block-device": [("blk", "sda", "")],
}


@pytest.mark.parametrize("filters", WAYS, ids=WAY_IDS)
@pytest.mark.parametrize("case", sorted(EVIL))
def test_both_ways_refuse_escapes_links_out_and_device_nodes(
    tmp_path: Path, case: str, filters: bool
) -> None:
    """Absolute names, `..`, hard links to anything but a file inside, members on or under
    an extracted symlink and device nodes are refused, naming the member, with filters and
    without them alike; nothing is written outside the destination."""
    (tmp_path / "outside").write_text("original")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(RefusedMember, match="'"):
        _extract(_tar(*EVIL[case]), dest, filters=filters)
    assert not (tmp_path / "evil").exists()
    assert (tmp_path / "outside").read_text() == "original"
    assert (tmp_path / "outside").stat().st_nlink == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "outside"]


def _tree_tar() -> bytes:
    """Directories with restrictive modes holding files, a symlink out, a hard link, a FIFO."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in (("ro", 0o500), ("ro/deep", 0o2750)):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 1_500_000_000
            tar.addfile(info)
        data = b"rows"
        info = tarfile.TarInfo("ro/deep/f.txt")
        info.size, info.mode, info.mtime = len(data), 0o4750, 1_600_000_000
        tar.addfile(info, io.BytesIO(data))
        for name, kind, target in (
            ("link", tarfile.SYMTYPE, "/etc/hostname"),
            ("hard", tarfile.LNKTYPE, "ro/deep/f.txt"),
            ("pipe", tarfile.FIFOTYPE, ""),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            if kind == tarfile.LNKTYPE:
                info.mode = 0o4750  # GNU tar records the linked file's mode
            tar.addfile(info)
    return buf.getvalue()


def _listing(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        link = os.readlink(path) if path.is_symlink() else ""
        out[str(path.relative_to(root))] = (st.st_mode, int(st.st_mtime), st.st_nlink, link)
    return out


@pytest.mark.skipif(not HAS_FILTERS, reason="compares the fallback with tarfile's filters")
def test_the_fallback_writes_the_same_tree_as_the_filter_way(tmp_path: Path) -> None:
    """Modes (read-only directories set last, a file's set-uid bit dropped, a directory's
    set-gid bit kept), times, symlinks kept as links, hard links and FIFOs come out the
    same with and without filters."""
    ways = {}
    for filters in (True, False):
        dest = tmp_path / str(filters)
        dest.mkdir()
        _extract(_tree_tar(), dest, filters=filters)
        ways[filters] = _listing(dest)
    assert ways[False] == ways[True]
    assert ways[False]["ro"][:2] == (0o40500, 1_500_000_000)
    assert ways[False]["ro/deep"][0] == 0o42750
    assert ways[False]["ro/deep/f.txt"][0] == 0o100750
    assert ways[False]["link"][3] == "/etc/hostname"
    assert ways[False]["hard"][2] == 2


_DEBIAN_SCRIPT = textwrap.dedent(
    """
    import io, sys, tarfile
    from recoveryd.errors import SourceError
    from recoveryd.sources.base import SourceInfo
    from recoveryd.sources.directory import STREAM_FORMAT, DirectorySource
    from recoveryd.sources.local import LocalRunner

    assert not hasattr(tarfile, "data_filter"), sys.version
    work = sys.argv[1]
    src = DirectorySource("geo", work + "/tree", runner=LocalRunner())
    info = SourceInfo(kind="directory", stream_format=STREAM_FORMAT)
    stream = src.snapshot()
    data = b"".join(iter(lambda: stream.read(65536), b""))
    stream.finish()
    src.restore(io.BytesIO(data), work + "/restored", info)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("../escaped"))
    try:
        src.restore(io.BytesIO(buf.getvalue()), work + "/evil", info)
    except SourceError as exc:
        print(exc)
    """
)


@pytest.mark.skipif(
    not DEBIAN_PYTHON.exists()
    or subprocess.run(
        [str(DEBIAN_PYTHON), "-c", "import tarfile; assert not hasattr(tarfile, 'data_filter')"],
        check=False,
    ).returncode
    != 0,
    reason="needs Debian 12's python3.11 (3.11.2, a tarfile without filters)",
)
def test_a_directory_restore_works_under_debian_12s_python(tmp_path: Path) -> None:
    """Under Debian 12's own python3.11 (3.11.2), a directory snapshot restores (its
    tarfile has no `filter=`) and a member escaping the tree is still refused."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("alpha")
    (tree / "sub").chmod(0o550)
    (tree / "ln").symlink_to("sub/a.txt")
    out = subprocess.run(
        [str(DEBIAN_PYTHON), "-c", _DEBIAN_SCRIPT, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "source geo: restore into" in out.stdout
    assert "'../escaped' names '../escaped', outside the tree" in out.stdout
    assert (tmp_path / "restored" / "sub" / "a.txt").read_text() == "alpha"
    assert (tmp_path / "restored" / "sub").stat().st_mode & 0o777 == 0o550
    assert os.readlink(tmp_path / "restored" / "ln") == "sub/a.txt"
    assert not (tmp_path / "escaped").exists()

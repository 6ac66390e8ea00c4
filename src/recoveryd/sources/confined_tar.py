"""Confined tar extraction: every member is checked before it is written.

`extract_confined` writes a tar stream into a directory, keeping modes, owners and
symlinks (as links, whatever they point to) but never writing outside it or through a
link: absolute names, `..`, a member on or under an already extracted symlink, a hard
link to anything but a regular file inside, and device nodes are refused
(`RefusedMember`, a `tarfile.TarError` naming the member and why); files lose their
set-uid and set-gid bits (directories keep theirs: a set-gid directory only passes its
group on).

Python's tarfile takes an extraction filter from 3.11.4 on (`extractall(filter=...)`);
Debian 12 ships 3.11.2, whose tarfile has none. There the same check runs on each member
before `extract`, with the order `extractall` keeps: directories are made 0700 while the
tree is written and get their recorded mode, owner and times last, deepest first. Both
ways apply the same check to the same members, so they refuse the same things.
"""

from __future__ import annotations

import copy
import os
import posixpath
import stat
import tarfile
from pathlib import Path

# tarfile before 3.11.4 (Debian 12's 3.11.2) has no extraction filters
HAS_FILTERS = hasattr(tarfile, "data_filter")
_PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID


class RefusedMember(tarfile.TarError):
    """A member that may not be written where its name puts it (tarfile before 3.11.4 has
    no FilterError classes, so this one serves both ways)."""

    def __init__(self, member: tarfile.TarInfo, why: str) -> None:
        super().__init__(f"{member.name!r} {why}")


def extract_confined(tar: tarfile.TarFile, dest: Path, *, filters: bool = HAS_FILTERS) -> None:
    """Extract every member of `tar` into the existing directory `dest`, each one passing
    `confined_check` first; owners by numeric id (set only when running as root).

    `filters=False` takes the way used where tarfile has no extraction filters."""
    if filters:
        tar.extractall(dest, numeric_owner=True, filter=confined_check)  # noqa: S202 - checked
        return
    _extract_checked(tar, str(dest))


def _extract_checked(tar: tarfile.TarFile, dest: str) -> None:
    """`extractall(filter=confined_check)` for a tarfile without filters: each member is
    checked just before it is written (the check looks at what is already extracted)."""
    directories: list[tarfile.TarInfo] = []
    for member in tar:
        checked = confined_check(member, dest)
        if checked.isdir():
            directories.append(checked)
            checked = copy.copy(checked)
            checked.mode = 0o700  # the recorded mode is set once the tree is in
        _extract_one(tar, checked, dest, set_attrs=not checked.isdir())
    for directory in sorted(directories, key=lambda m: m.name, reverse=True):
        path = os.path.join(dest, directory.name)  # noqa: PTH118
        try:
            tar.chown(directory, path, numeric_owner=True)
            tar.utime(directory, path)
            tar.chmod(directory, path)
        except tarfile.ExtractError:
            if tar.errorlevel > 1:
                raise


def _extract_one(
    tar: tarfile.TarFile, member: tarfile.TarInfo, dest: str, *, set_attrs: bool
) -> None:
    """One already checked member; where tarfile has filters (the way forced in tests) it
    is told not to filter again, so it writes what was checked, as before 3.11.4."""
    if HAS_FILTERS:
        tar.extract(member, dest, set_attrs=set_attrs, numeric_owner=True, filter="fully_trusted")
    else:
        tar.extract(member, dest, set_attrs=set_attrs, numeric_owner=True)


def confined_check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """The member when it may be written under `dest` (a file without its set-uid and
    set-gid bits: a restore never creates a privileged executable, whoever made the
    stream); else RefusedMember."""
    _check_path(member, dest, member.name)
    if member.islnk():
        if member.linkname.startswith("/"):
            raise RefusedMember(member, f"would link to {member.linkname!r}, outside the tree")
        _check_path(member, dest, member.linkname)
        target = os.path.join(dest, member.linkname)  # noqa: PTH118
        if os.path.islink(target) or not os.path.isfile(target):  # noqa: PTH113, PTH114
            raise RefusedMember(
                member, f"would link to {member.linkname!r}, not a file in the tree"
            )
    elif not (member.issym() or member.isfile() or member.isdir() or member.isfifo()):
        raise RefusedMember(member, "is a device node or other special file")
    if (member.isfile() or member.islnk()) and member.mode & _PRIVILEGE_BITS:
        member = copy.copy(member)  # TarInfo.replace is 3.11.4+
        member.mode &= ~_PRIVILEGE_BITS
    return member


def _check_path(member: tarfile.TarInfo, dest: str, name: str) -> None:
    """Refuse a path that is absolute, climbs out with `..`, or goes through or onto a
    symlink that exists under `dest`."""
    parts = [p for p in posixpath.normpath(name).split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise RefusedMember(member, f"names {name!r}, outside the tree")
    path = dest
    for part in parts:
        path = os.path.join(path, part)  # noqa: PTH118
        if os.path.islink(path):  # noqa: PTH114
            raise RefusedMember(member, f"would be written through the symlink {path!r}")

"""A scratch PostgreSQL server on a recovered data directory (`restore --time T --to DIR
--start`), for drills and investigations: started on 127.0.0.1 only, on the port given
(or a free one), without Unix sockets, as the directory's owner; ready once recovery has
replayed to the target and promoted (PostgreSQL removes `recovery.signal` then)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from recoveryd.errors import RecoverydError

DEBIAN_PG_LIB = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_ctl_for(data: Path) -> str:
    """The `pg_ctl` of the data directory's major version (Debian's layout), else PATH's."""
    version = (data / "PG_VERSION").read_text().strip()
    candidate = DEBIAN_PG_LIB / version / "bin" / "pg_ctl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("pg_ctl")
    if found is None:
        raise RecoverydError(f"pg_ctl (PostgreSQL {version}) is not installed; install it")
    return found


MARKER = "recoveryd-scratch"
"""A file in a scratch data directory: recoveryd made it, and may stop and remove it."""


def remove_scratch(data: Path) -> bool:
    """Stop the scratch server of an earlier `--start` on `data` and delete the directory;
    False (nothing touched) when `data` is missing, empty, or not one recoveryd made."""
    if not (data / MARKER).exists():
        return False
    if (data / "postmaster.pid").exists():
        _as_owner(data, [pg_ctl_for(data), "-D", str(data), "-m", "fast", "-w", "stop"])
    shutil.rmtree(data)
    return True


def _as_owner(data: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    owner = data.stat().st_uid
    if os.geteuid() == 0 and owner != 0:
        argv = ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def start_scratch(data: Path, port: int = 0, *, timeout: float = 3600.0) -> str:
    """Start PostgreSQL on `data` and wait until it has recovered and promoted; returns a
    libpq connection string for it (no password: as the owner's local trust allows)."""
    port = port or free_port()
    log = data / "recoveryd-start.log"
    argv = [
        pg_ctl_for(data),
        *("-D", str(data), "-l", str(log), "-w", "-t", str(int(timeout)), "start"),
        "-o",
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''",
    ]
    (data / MARKER).touch()
    done = _as_owner(data, argv)
    if done.returncode != 0:
        raise RecoverydError(f"the recovered server did not start: {_tail(log) or done.stderr}")
    deadline = time.monotonic() + timeout
    while (data / "recovery.signal").exists():
        if not (data / "postmaster.pid").exists():
            raise RecoverydError(f"the recovered server stopped during recovery: {_tail(log)}")
        if time.monotonic() > deadline:
            raise RecoverydError(f"recovery did not finish within {timeout:g}s: {_tail(log)}")
        time.sleep(0.2)
    return f"host=127.0.0.1 port={port} dbname=postgres"


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
    except OSError:
        return ""

"""SSH to database and drill hosts: paramiko's one home in recoveryd.

Public API:
- `ssh_runner(host, base_dir=...)`: a `sources.base.CommandRunner` that runs
  argument lists on `host` (quoted with `shlex.join`, never re-split), with
  streaming stdin/stdout, captured stderr and exit codes.
- `host_fingerprint(key)`, `HostKeyError` (from `recoveryd.errors`).

Host keys are always checked against the host's `known_hosts` file: an
unknown or changed key is refused with a `HostKeyError` naming the host and
the fingerprint it presented. There is deliberately no option to accept it.
"""

from __future__ import annotations

from recoveryd.remote.client import SshConnection, connect
from recoveryd.remote.runner import SshProcess, SshRunner, ssh_runner

__all__ = ["SshConnection", "SshProcess", "SshRunner", "connect", "ssh_runner"]

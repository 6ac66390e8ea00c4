"""`CommandRunner` over SSH: argument lists run on a remote host.

Commands are quoted with `shlex.join`, so each argument reaches the remote
program as one argument whatever it contains (`;`, `$(...)`, spaces).
Environment variables are passed as leading `env NAME=VALUE` arguments
(servers rarely accept `SendEnv`). stdout streams through `read`, stdin
through `write`; stderr is drained in the background into a bounded buffer
so that a chatty command never blocks its stdout.

Every command runs in a session and process group of its own (`setsid`), whose
id the remote shell reports on stderr before it `exec`s the command. Stopping
it (`SshProcess.stop_group`) sends TERM to the whole group, then KILL after a
grace period, with the shell's own `kill -SIG -PGID` (Debian's dash refuses
`kill -SIG -- -PGID`), and says what happened, failures included.
"""

from __future__ import annotations

import contextlib
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import paramiko

from recoveryd.config import Host
from recoveryd.errors import RemoteError
from recoveryd.remote.client import SshConnection, connect, host_label

STDERR_LIMIT = 64 * 1024
_CHUNK = 64 * 1024


_PID_MARK = b"@@recoveryd-pid "
KILL_GRACE = 5.0  # seconds between TERM and KILL to a remote process group
_PID_WAIT = 5.0  # how long stopping a command that just started waits for its pid
# The command gets a session (and process group) of its own: `setsid -w` forks when the
# shell already leads a group (as under sshd), waits and passes the exit status on. The
# shell inside reports its pid (= the group's id) on stderr, then becomes the command (exec
# keeps the pid), so that a timeout or an abort can signal the whole group.
_REPORT = 'echo "@@recoveryd-pid $$" >&2; exec "$@"'
_WRAPPER = (
    "if command -v setsid >/dev/null 2>&1; then "
    f"exec setsid -w sh -c '{_REPORT}' sh \"$@\"; fi; {_REPORT}"
)
# $0 = the process group, $1 = the grace period in tenths of a second. Plain `kill -SIG
# -PGID`: dash's builtin refuses `kill -SIG -- -PGID`. Prints one line: what happened.
_STOP_GROUP = r"""g=$0; tries=$1; grace=$2
if ! kill -0 -"$g" 2>/dev/null; then echo "process group $g had already ended"; exit 0; fi
if ! err=$(kill -TERM -"$g" 2>&1); then echo "process group $g: TERM failed: $err"; exit 3; fi
i=0
while kill -0 -"$g" 2>/dev/null; do
  i=$((i+1))
  if [ "$i" -gt "$tries" ]; then
    if ! err=$(kill -KILL -"$g" 2>&1); then echo "process group $g: KILL failed: $err"; exit 3; fi
    echo "process group $g: TERM, then KILL after ${grace}s"; exit 0
  fi
  sleep 0.1
done
echo "process group $g ended after TERM"
"""


def remote_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The command line the remote shell receives: every argument quoted."""
    if not argv:
        raise RemoteError("ssh: empty command; give the program and its arguments")
    prefix = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
    return shlex.join([*prefix, *argv])


def wrapped_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """`remote_command` run through `sh -c` that first reports its pid on stderr."""
    if not argv:
        raise RemoteError("ssh: empty command; give the program and its arguments")
    prefix = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
    return shlex.join(["sh", "-c", _WRAPPER, "sh", *prefix, *argv])


class SshProcess:
    """A command running on the remote host (implements `sources.base.Process`)."""

    def __init__(
        self,
        channel: paramiko.Channel,
        label: str,
        timeout: float | None,
        signal_remote: Callable[[int, float], str] | None = None,
    ) -> None:
        self._channel = channel
        self._label = label
        self._timeout = timeout
        self._signal_remote = signal_remote
        self.pid: int | None = None
        self._pid_seen = threading.Event()
        self.cleanup: str | None = None  # what stopping the command did (stop_group)
        self._head = bytearray()  # stderr until the pid line was seen
        self._stderr = bytearray()
        self._stderr_lock = threading.Lock()
        channel.settimeout(timeout)
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()

    def _drain_stderr(self) -> None:
        while True:
            try:
                data = self._channel.recv_stderr(_CHUNK)
            except TimeoutError:
                if self._channel.closed or self._channel.exit_status_ready():
                    return
                continue
            except (OSError, paramiko.SSHException):
                return
            if not data:
                self._pid_seen.set()
                return
            if self._signal_remote is not None and self.pid is None:
                data = self._take_pid(data)
            with self._stderr_lock:
                self._stderr += data
                if len(self._stderr) > STDERR_LIMIT:
                    del self._stderr[: len(self._stderr) - STDERR_LIMIT]

    def _take_pid(self, data: bytes) -> bytes:
        """Strip the wrapper's pid line from the start of stderr; what follows is the command's."""
        self._head += data
        line, sep, rest = bytes(self._head).partition(b"\n")
        if not sep:
            if len(self._head) < 64:
                return b""
            self.pid = 0  # no marker: a shell that did not run the wrapper; give up on it
            self._pid_seen.set()
            return bytes(self._head)
        self.pid = int(line[len(_PID_MARK) :]) if line.startswith(_PID_MARK) else 0
        self._pid_seen.set()
        return rest if line.startswith(_PID_MARK) else bytes(self._head)

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes of stdout (all of it when size < 0); b"" at its end."""
        if size < 0:
            parts = []
            while chunk := self.read(_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        try:
            return self._channel.recv(size)
        except TimeoutError:
            raise TimeoutError(f"ssh {self._label}: no output within {self._timeout:g}s") from None

    def write(self, data: bytes, /) -> None:
        try:
            self._channel.sendall(data)
        except TimeoutError:
            raise TimeoutError(f"ssh {self._label}: stdin not consumed in time") from None
        except (OSError, paramiko.SSHException) as exc:
            raise RemoteError(f"ssh {self._label}: writing to the command failed: {exc}") from None

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError, paramiko.SSHException):
            self._channel.shutdown_write()

    def wait(self, timeout: float | None = None) -> int:
        """The exit status; TimeoutError when the command does not end in time."""
        if not self._channel.status_event.wait(timeout):
            raise TimeoutError(f"ssh {self._label}: the command did not end within {timeout}s")
        status = self._channel.recv_exit_status()
        self._drain.join(timeout=5)
        self._channel.close()
        return status

    def stderr_text(self) -> str:
        with self._stderr_lock:
            return self._stderr.decode("utf-8", errors="replace")

    def kill(self) -> None:
        """Stop the remote command and its process group (see `stop_group`)."""
        self.stop_group()

    @property
    def connection_lost(self) -> bool:
        """The SSH connection dropped (the command's end was never reported)."""
        transport = self._channel.get_transport()
        return transport is None or not transport.is_active()

    def stop_group(self, grace: float = KILL_GRACE) -> str:
        """TERM to the command's process group, KILL after `grace` seconds, channel closed.

        Returns (and keeps in `cleanup`) one sentence saying what happened, failures
        included: the caller journals it. Never raises. After a lost connection it signals
        through a new one.
        """
        note = "the command had already ended"
        ended = self._channel.exit_status_ready() and not self.connection_lost
        if self._signal_remote is not None and not ended:
            self._pid_seen.wait(_PID_WAIT)
            if not self.pid:
                note = "cleanup failed: the remote command never reported its pid; it may still run"
            else:
                try:
                    note = self._signal_remote(self.pid, grace)
                except (RemoteError, TimeoutError, OSError, paramiko.SSHException) as exc:
                    note = f"cleanup of process group {self.pid} failed: {exc}"
        self._channel.close()
        self.cleanup = f"remote {note}"
        return self.cleanup


class SshRunner:
    """Runs commands on one host over one lazily opened, reused connection."""

    def __init__(self, host: Host, *, base_dir: Path, command_timeout: float | None = None) -> None:
        self.host = host
        self.base_dir = base_dir
        self.command_timeout = command_timeout
        self.description = f"ssh {host_label(host)}"
        self._conn: SshConnection | None = None
        self._lock = threading.Lock()

    def connection(self) -> SshConnection:
        with self._lock:
            if self._conn is None or not self._conn.alive():
                self._conn = connect(self.host, base_dir=self.base_dir)
            return self._conn

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: bool = False
    ) -> SshProcess:
        """Start `argv` remotely; stdin stays open for `write` when `stdin` is true."""
        conn = self.connection()
        channel = conn.open_channel(self.host.connect_timeout)
        try:
            channel.exec_command(wrapped_command(argv, env))
        except paramiko.SSHException as exc:
            channel.close()
            raise RemoteError(f"{self.description}: cannot start {argv[0]}: {exc}") from None
        proc = SshProcess(
            channel, host_label(self.host), self.command_timeout, signal_remote=self._terminate
        )
        if not stdin:
            proc.close_stdin()
        return proc

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        input: bytes | None = None,
    ) -> tuple[int, bytes, str]:
        """Run to completion: (exit status, stdout, stderr); TimeoutError past `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        proc = self.start(argv, env=env, stdin=input is not None)
        proc._channel.settimeout(timeout)
        proc._timeout = timeout
        try:
            if input is not None:
                proc.write(input)
                proc.close_stdin()
            out = proc.read()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            status = proc.wait(left)
        except BaseException:
            proc.kill()
            raise
        return status, out, proc.stderr_text()

    def _terminate(self, pgid: int, grace: float) -> str:
        """TERM, then KILL after `grace`, to a remote process group, on a channel of its own;
        what happened as one sentence."""
        channel = self.connection().open_channel(self.host.connect_timeout)
        try:
            channel.settimeout(grace + self.host.connect_timeout)
            tries = str(max(1, int(grace * 10)))
            argv = ["sh", "-c", _STOP_GROUP, str(pgid), tries, f"{grace:g}"]
            channel.exec_command(shlex.join(argv))
            if not channel.status_event.wait(grace + self.host.connect_timeout):
                return f"cleanup of process group {pgid} did not answer in time"
            status = channel.recv_exit_status()
            out = channel.recv(4096).decode(errors="replace").strip()
            err = channel.recv_stderr(4096).decode(errors="replace").strip()
        finally:
            channel.close()
        text = out or err or f"cleanup of process group {pgid} exited with status {status}"
        return text if status == 0 else f"cleanup failed: {text}"

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def ssh_runner(host: Host, *, base_dir: Path, command_timeout: float | None = None) -> SshRunner:
    """A CommandRunner for `host`; the connection opens on first use."""
    return SshRunner(host, base_dir=base_dir, command_timeout=command_timeout)

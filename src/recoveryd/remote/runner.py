"""`CommandRunner` over SSH: argument lists run on a remote host.

Commands are quoted with `shlex.join`, so each argument reaches the remote
program as one argument whatever it contains (`;`, `$(...)`, spaces).
Environment variables are passed as leading `env NAME=VALUE` arguments
(servers rarely accept `SendEnv`). stdout streams through `read`, stdin
through `write`; stderr is drained in the background into a bounded buffer
so that a chatty command never blocks its stdout.
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
# The remote shell reports the command's pid on stderr, then becomes the command (exec keeps
# the pid), so that a timeout or an abort can signal it instead of leaving it running.
_WRAPPER = 'echo "@@recoveryd-pid $$" >&2; exec "$@"'


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
        signal_remote: Callable[[int], None] | None = None,
    ) -> None:
        self._channel = channel
        self._label = label
        self._timeout = timeout
        self._signal_remote = signal_remote
        self.pid: int | None = None
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
            return bytes(self._head)
        self.pid = int(line[len(_PID_MARK) :]) if line.startswith(_PID_MARK) else 0
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
        """Stop the remote command (SIGTERM to it and its process group) and close the channel."""
        if self.pid and self._signal_remote is not None and not self._channel.exit_status_ready():
            with contextlib.suppress(RemoteError, TimeoutError, OSError, paramiko.SSHException):
                self._signal_remote(self.pid)
        self._channel.close()


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

    def _terminate(self, pid: int) -> None:
        """SIGTERM to a remote pid and to its process group, on a channel of its own."""
        channel = self.connection().open_channel(self.host.connect_timeout)
        try:
            channel.settimeout(self.host.connect_timeout)
            script = 'kill -TERM "$0" 2>/dev/null; kill -TERM -- "-$0" 2>/dev/null; true'
            channel.exec_command(shlex.join(["sh", "-c", script, str(pid)]))
            channel.status_event.wait(self.host.connect_timeout)
        finally:
            channel.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def ssh_runner(host: Host, *, base_dir: Path, command_timeout: float | None = None) -> SshRunner:
    """A CommandRunner for `host`; the connection opens on first use."""
    return SshRunner(host, base_dir=base_dir, command_timeout=command_timeout)

"""Run dump tools as local subprocesses (the CommandRunner of `sources/base.py`).

Commands are argument lists, never shell strings. stderr is drained by a thread
into a bounded buffer (the last `STDERR_LIMIT` bytes), so a chatty tool never
blocks on a full pipe and error messages stay short. A command that is not
installed raises `ToolNotFoundError`; callers name their source in the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from recoveryd.errors import SourceError

STDERR_LIMIT = 64 * 1024
PIPE_SIZE = 1024 * 1024  # a dump's stdout and a restore's stdin: 16x fewer wake-ups, reads


class ToolNotFoundError(SourceError):
    """The executable of a command is not installed (or not on PATH)."""

    def __init__(self, tool: str, where: str) -> None:
        super().__init__(f"{tool}: not found ({where}); install it or put it on PATH")
        self.tool = tool


class _StderrTail:
    """Drains a pipe in a thread, keeping only its last `limit` bytes."""

    def __init__(self, pipe: IO[bytes], limit: int = STDERR_LIMIT) -> None:
        self._pipe = pipe
        self._limit = limit
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, name="stderr-drain", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while block := self._pipe.read1(65536):  # type: ignore[attr-defined]
                with self._lock:
                    self._buf += block
                    if len(self._buf) > self._limit:
                        del self._buf[: len(self._buf) - self._limit]
        except (OSError, ValueError):
            return
        finally:
            self._pipe.close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        with self._lock:
            return self._buf.decode("utf-8", errors="replace")


class LocalProcess:
    """A running local command (the `Process` protocol)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        assert popen.stderr is not None  # noqa: S101 - always piped by LocalRunner.start
        self._stderr = _StderrTail(popen.stderr)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes of stdout as soon as any are available; b"" at its end."""
        out = self._popen.stdout
        if out is None:
            return b""
        try:
            if size < 0:
                return out.read()
            return out.read1(size)  # type: ignore[attr-defined, no-any-return]
        except ValueError:  # closed by kill()
            return b""

    def readinto(self, buf: memoryview, /) -> int:
        """Read stdout straight into `buf` (no intermediate bytes object): as many bytes as
        are available, up to its length; 0 at its end."""
        out = self._popen.stdout
        if out is None:
            return 0
        try:
            return out.readinto1(buf)  # type: ignore[attr-defined, no-any-return]
        except ValueError:  # closed by kill()
            return 0

    def write(self, data: bytes | memoryview, /) -> None:
        """Write to stdin; OSError (BrokenPipeError) when the command has gone."""
        stdin = self._popen.stdin
        if stdin is None:
            raise BrokenPipeError("stdin of the command is not open")
        stdin.write(data)
        stdin.flush()

    def close_stdin(self) -> None:
        stdin = self._popen.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):  # it already exited; its status tells why
                stdin.close()

    def wait(self, timeout: float | None = None) -> int:
        try:
            status = self._popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"command still running after {timeout}s") from exc
        self._stderr.join(5.0)
        if self._popen.stdout is not None:
            self._popen.stdout.close()
        return status

    def stderr_text(self) -> str:
        return self._stderr.text()

    def kill(self) -> None:
        """Kill the command (idempotent) and reap it."""
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.kill()
        self.close_stdin()
        self._popen.wait()
        self._stderr.join(5.0)
        if self._popen.stdout is not None:
            self._popen.stdout.close()


class LocalRunner:
    """Starts local commands; `extra_path` directories are searched after PATH."""

    description = "local"

    def __init__(self, extra_path: Iterable[str | Path] = ()) -> None:
        self._extra_path = [str(p) for p in extra_path]

    def which(self, tool: str, extra_dirs: Iterable[str | Path] = ()) -> str | None:
        """The full path of `tool` on PATH, then in `extra_dirs`; None when absent."""
        found = shutil.which(tool)
        if found:
            return found
        dirs = [*self._extra_path, *(str(d) for d in extra_dirs)]
        return shutil.which(tool, path=os.pathsep.join(dirs)) if dirs else None

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: bool = False
    ) -> LocalProcess:
        """Start `argv`; stdout piped, stderr drained; `env` adds to the environment."""
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        exe = argv[0]
        if os.sep not in exe:
            path = full_env.get("PATH", os.defpath)
            if self._extra_path:
                path = os.pathsep.join([path, *self._extra_path])
            resolved = shutil.which(exe, path=path)
            if resolved is None:
                raise ToolNotFoundError(exe, "PATH")
            exe = resolved
        try:
            popen = subprocess.Popen(
                [exe, *argv[1:]],
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                close_fds=True,
                start_new_session=True,  # a Ctrl-C on the terminal reaches us, not the dump
            )
        except FileNotFoundError as exc:
            raise ToolNotFoundError(argv[0], exe) from exc
        except PermissionError as exc:
            raise SourceError(f"{argv[0]}: cannot be executed ({exc.strerror})") from exc
        for pipe in (popen.stdout, popen.stdin):
            if pipe is not None:
                _widen(pipe.fileno())
        return LocalProcess(popen)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        input: bytes | None = None,
    ) -> tuple[int, bytes, str]:
        """Run to completion: (exit status, stdout, stderr); kills it after `timeout`."""
        proc = self.start(argv, env=env, stdin=input is not None)
        out = bytearray()
        writer: threading.Thread | None = None
        if input is not None:
            writer = threading.Thread(target=_feed, args=(proc, input), daemon=True)
            writer.start()
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(timeout, expire) if timeout is not None else None
        if timer is not None:
            timer.start()
        try:
            while block := proc.read(65536):
                out += block
            status = proc.wait(timeout)
        except TimeoutError:
            proc.kill()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if writer is not None:
                writer.join(5.0)
        if expired.is_set():
            raise TimeoutError(f"{argv[0]} still running after {timeout}s; it was killed")
        return status, bytes(out), proc.stderr_text()


def _widen(fd: int) -> None:
    """Give a pipe PIPE_SIZE bytes of buffer (Linux; the default is 64 KiB), so a dump tool
    and recoveryd each move a megabyte per wake-up instead of 64 KiB; where the system
    refuses (`fs.pipe-max-size`, another OS), the pipe keeps its size."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _feed(proc: LocalProcess, data: bytes) -> None:
    try:
        proc.write(data)
    except OSError:
        pass  # the command exited early; its status and stderr say why
    finally:
        proc.close_stdin()

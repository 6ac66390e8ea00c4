"""Feeding a stream into a command's stdin (restores)."""

from __future__ import annotations

import threading

from recoveryd.sources.base import ByteReader, Process, ViewReader
from recoveryd.sources.local import LocalProcess

FEED_BLOCK = 1024 * 1024
VIEW_BLOCK = 4 * 1024 * 1024  # a whole chunk (at most max_size) in one write


def feed(proc: Process, stream: ByteReader, block: int = FEED_BLOCK) -> int:
    """Copy `stream` into `proc`'s stdin, then wait: the command's exit status.

    The command's stdout is drained (and discarded) by a thread so it never
    blocks. When the command dies early, feeding stops and its status (with
    `proc.stderr_text()`) tells why; errors raised by `stream` itself (an
    integrity failure of the repository) kill the command and propagate.

    A stream that lends its bytes (a snapshot being restored) is written to a local
    command's pipe straight from its chunks, a whole chunk at a time, without copies.
    """
    drain = threading.Thread(target=_drain, args=(proc,), daemon=True)
    drain.start()
    try:
        if isinstance(stream, ViewReader) and isinstance(proc, LocalProcess):
            _copy_views(stream, proc)
        else:
            _copy(stream, proc, block)
    except BaseException:
        proc.kill()
        drain.join(5.0)
        raise
    proc.close_stdin()
    drain.join()  # stdout ends when the command does
    return proc.wait()


def _copy(stream: ByteReader, proc: Process, block: int) -> None:
    while data := stream.read(block):
        try:
            proc.write(data)
        except OSError:
            return  # the command has gone; its status says why


def _copy_views(stream: ViewReader, proc: LocalProcess) -> None:
    while view := stream.read_view(VIEW_BLOCK):
        try:
            proc.write(view)
        except OSError:
            return  # the command has gone; its status says why


def _drain(proc: Process) -> None:
    try:
        while proc.read(65536):
            pass
    except (OSError, ValueError):
        return

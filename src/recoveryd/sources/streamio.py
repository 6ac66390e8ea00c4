"""Feeding a stream into a command's stdin (restores)."""

from __future__ import annotations

import threading

from recoveryd.sources.base import ByteReader, Process

FEED_BLOCK = 1024 * 1024


def feed(proc: Process, stream: ByteReader, block: int = FEED_BLOCK) -> int:
    """Copy `stream` into `proc`'s stdin, then wait: the command's exit status.

    The command's stdout is drained (and discarded) by a thread so it never
    blocks. When the command dies early, feeding stops and its status (with
    `proc.stderr_text()`) tells why; errors raised by `stream` itself (an
    integrity failure of the repository) kill the command and propagate.
    """
    drain = threading.Thread(target=_drain, args=(proc,), daemon=True)
    drain.start()
    try:
        while data := stream.read(block):
            try:
                proc.write(data)
            except OSError:
                break  # the command has gone; its status says why
    except BaseException:
        proc.kill()
        drain.join(5.0)
        raise
    proc.close_stdin()
    drain.join()  # stdout ends when the command does
    return proc.wait()


def _drain(proc: Process) -> None:
    try:
        while proc.read(65536):
            pass
    except (OSError, ValueError):
        return

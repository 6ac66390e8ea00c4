"""The sd_notify protocol spoken to a socket bound by the test, as systemd would."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoveryd.daemon.sdnotify import Notifier, Watchdog
from tests.fixtures.web import poll


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    s.bind(path)
    s.settimeout(5)
    yield s, path
    s.close()


def test_messages_reach_the_socket(sock: tuple[socket.socket, str]) -> None:
    """READY (with MAINPID), STATUS, RELOADING with MONOTONIC_USEC and STOPPING are sent."""
    s, path = sock
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.ready("idle")
    assert s.recv(4096).decode().split("\n") == ["READY=1", f"MAINPID={os.getpid()}", "STATUS=idle"]
    n.reloading()
    lines = s.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
    n.stopping("bye")
    assert s.recv(4096) == b"STOPPING=1\nSTATUS=bye"


def test_abstract_namespace_socket() -> None:
    """`@name` addresses the Linux abstract namespace."""
    name = f"recoveryd-test-{uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(b"\0" + name.encode())
    s.settimeout(5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert s.recv(100) == b"STATUS=hello"
    finally:
        s.close()


def test_without_systemd_nothing_is_sent() -> None:
    """Outside systemd every call is a harmless no-op."""
    n = Notifier({})
    assert not n.enabled and not n.ready()


def test_watchdog_pings_only_while_the_loop_is_alive(sock: tuple[socket.socket, str]) -> None:
    """WATCHDOG=1 every half period while alive; none once the scheduler is stuck."""
    s, path = sock
    alive = [True]
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    dog = Watchdog(n, lambda: alive[0])
    assert dog.interval == 0.05
    dog.start()
    try:
        assert s.recv(100) == b"WATCHDOG=1"
        alive[0] = False
        assert poll(lambda: dog.skipped >= 2)
        pings = dog.pings
        assert poll(lambda: dog.skipped >= 4)
        assert dog.pings == pings
    finally:
        dog.stop()


def test_watchdog_for_another_pid_is_ignored() -> None:
    """WATCHDOG_PID naming another process disables our pings."""
    n = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "100", "WATCHDOG_PID": "1"})
    assert n.watchdog_usec is None

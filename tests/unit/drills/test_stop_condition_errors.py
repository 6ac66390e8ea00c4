"""A stop condition that cannot be checked stops the drill instead of silently ending the
background checking."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoveryd.drills.api import run_playbook
from tests.unit.drills.helpers import records, write_playbook


@pytest.fixture
def flaky_service() -> Iterator[str]:
    """A loopback server that answers HTTP 200 once, then bytes that are not HTTP."""
    server = socket.create_server(("127.0.0.1", 0))
    served = 0
    done = threading.Event()

    def serve() -> None:
        nonlocal served
        server.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(4096)
                if served == 0:
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                else:
                    conn.sendall(b"\x00\x01 garbage, not HTTP\r\n\r\n")
                served += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/health"
    finally:
        done.set()
        thread.join(5)
        server.close()


def test_a_stop_condition_failing_with_an_unexpected_error_aborts(
    flaky_service: str, tmp_path: Path
) -> None:
    """The service's health check passes at first, then the service answers something that
    is not HTTP: the stop condition trips and the drill is aborted and rolled back, rather
    than the checking ending quietly while the drill goes on."""
    undone = tmp_path / "undone"
    book = write_playbook(
        tmp_path,
        f"""\
apiVersion: recoveryd/v1
kind: Drill
name: flaky-stop
stop_conditions:
  - {{name: service healthy, http: {{url: "{flaky_service}"}}, interval: 100ms}}
steps:
  - name: change something
    run: ["true"]
    rollback: {{name: undo it, run: [touch, "{undone}"]}}
  - name: long work
    sleep: 20s
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "aborted", result.error
    tripped = records(result.journal, "stop_condition")
    assert tripped and tripped[0]["name"] == "service healthy"
    assert undone.exists()

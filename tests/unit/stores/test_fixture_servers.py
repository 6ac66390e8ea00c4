"""The object-store test servers report start-up failures with their log (never a skip)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.objectstores import ObjectStoreServers, _Proc, _wait_for, make_test_ca


def test_a_server_that_dies_fails_with_its_log_tail(tmp_path: Path) -> None:
    """When a server process exits during start-up, the error carries its last log lines."""
    log = tmp_path / "server.out"
    proc = _Proc("broken", ["sh", "-c", "echo 'bind: address in use'; exit 3"], log)
    popen = proc.start()
    with pytest.raises(RuntimeError) as info:
        _wait_for("broken server", lambda: False, 30, [log], popen)
    assert "process exited with 3" in str(info.value)
    assert "bind: address in use" in str(info.value)


def test_launcher_surfaces_start_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that cannot start raises from get() with the reason (the fixture then fails)."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    servers = ObjectStoreServers(tmp_path / "servers", ("swift",))
    try:
        with pytest.raises((RuntimeError, OSError)):
            servers.get("swift")
    finally:
        servers.close()


def test_test_ca_certificates_are_written(tmp_path: Path) -> None:
    """The test CA produces a CA file, a server certificate and key, and a combined PEM."""
    ca = make_test_ca(tmp_path)
    for path in (ca.ca_file, ca.cert_file, ca.key_file, ca.pem_file):
        assert path.read_bytes().startswith(b"-----BEGIN")

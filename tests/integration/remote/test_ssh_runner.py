"""The SSH runner against a real OpenSSH server on loopback."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from pathlib import Path

import pytest

from recoveryd.errors import HostKeyError, RemoteError
from recoveryd.remote import ssh_runner
from tests.fixtures.sshd import SshServer

pytestmark = pytest.mark.integration


def test_runs_a_command_and_returns_its_exit_status_and_stderr(sshd_server: SshServer) -> None:
    """A remote command's exit status, stdout and stderr come back as they were."""
    runner = ssh_runner(sshd_server.host(), base_dir=Path("/"))
    try:
        status, out, err = runner.run(["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=20)
    finally:
        runner.close()
    assert status == 7
    assert out == b"out\n"
    assert "err" in err


def test_shell_metacharacters_reach_the_program_as_one_argument(sshd_server: SshServer) -> None:
    """An argument full of shell syntax is passed verbatim, never run by the remote shell."""
    nasty = "a b; touch /tmp/recoveryd-pwned $(id) `id` | cat > x && echo 'q' \"d\""
    runner = ssh_runner(sshd_server.host(), base_dir=Path("/"))
    try:
        status, out, _ = runner.run(["printf", "%s|", nasty, "second"], timeout=20)
    finally:
        runner.close()
    assert status == 0
    assert out.decode() == f"{nasty}|second|"
    assert not Path("/tmp/recoveryd-pwned").exists()


def test_large_stdin_and_stdout_stream_through(sshd_server: SshServer) -> None:
    """Tens of megabytes stream to a remote command and back without loss."""
    data = (hashlib.sha256(b"seed").digest() * 4096) * 80  # ~10 MiB
    runner = ssh_runner(sshd_server.host(), base_dir=Path("/"))
    try:
        proc = runner.start(["cat"], stdin=True)

        def feed() -> None:
            step = 256 * 1024
            for i in range(0, len(data), step):
                proc.write(data[i : i + step])
            proc.close_stdin()

        writer = threading.Thread(target=feed)
        writer.start()
        received = bytearray()
        while chunk := proc.read(65536):
            received += chunk
        writer.join(30)
        assert proc.wait(30) == 0
    finally:
        runner.close()
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


def test_environment_variables_are_passed(sshd_server: SshServer) -> None:
    """Variables given in env are set for the remote command."""
    runner = ssh_runner(sshd_server.host(), base_dir=Path("/"))
    try:
        status, out, _ = runner.run(
            ["sh", "-c", 'printf %s "$GREETING"'], env={"GREETING": "x; y"}, timeout=20
        )
    finally:
        runner.close()
    assert (status, out) == (0, b"x; y")


def test_unknown_host_key_is_refused_naming_the_fingerprint(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    """A server whose key is not in known_hosts is refused, and the error names its fingerprint."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    fp = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(sshd_server.host_key_pub)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    runner = ssh_runner(sshd_server.host(known_hosts=str(empty)), base_dir=Path("/"))
    with pytest.raises(HostKeyError) as info:
        runner.run(["true"], timeout=10)
    assert "unknown host key" in str(info.value)
    assert fp in str(info.value)
    assert f"127.0.0.1:{sshd_server.port}" in str(info.value)


def test_changed_host_key_is_refused(sshd_server: SshServer, tmp_path: Path) -> None:
    """A server presenting a different key than known_hosts records is refused."""
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd_server.port} {kind} {blob}\n")
    runner = ssh_runner(sshd_server.host(known_hosts=str(known)), base_dir=Path("/"))
    with pytest.raises(HostKeyError) as info:
        runner.run(["true"], timeout=10)
    assert "host key changed" in str(info.value)


def test_missing_known_hosts_is_refused(sshd_server: SshServer, tmp_path: Path) -> None:
    """Without a known_hosts file nothing connects: there is no trust on first use."""
    runner = ssh_runner(sshd_server.host(known_hosts=str(tmp_path / "absent")), base_dir=Path("/"))
    with pytest.raises(HostKeyError):
        runner.run(["true"], timeout=10)


def test_command_timeout_raises_and_stops_the_remote_command(sshd_server: SshServer) -> None:
    """A command that outlives its timeout raises TimeoutError instead of hanging, and the
    remote process is stopped rather than left running."""
    runner = ssh_runner(sshd_server.host(), base_dir=Path("/"))
    try:
        with pytest.raises(TimeoutError):
            runner.run(["sleep", "31.25"], timeout=1)
        deadline = time.monotonic() + 10
        while _running("sleep 31.25"):
            assert time.monotonic() < deadline, "the remote sleep is still running"
            time.sleep(0.05)
    finally:
        runner.close()


def _running(pattern: str) -> bool:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False)
    return done.returncode == 0


def test_stderr_is_the_commands_own(sshd_server: SshServer) -> None:
    """The pid line the wrapper reports is not part of the command's stderr."""
    runner = ssh_runner(sshd_server.host(), base_dir=Path("/"))
    try:
        _, _, err = runner.run(["sh", "-c", "echo oops >&2"], timeout=20)
    finally:
        runner.close()
    assert err == "oops\n"


def test_unreachable_port_is_a_remote_error(sshd_server: SshServer) -> None:
    """Connecting to a port where nothing listens fails with a RemoteError naming the host."""
    from tests.fixtures.sshd import free_port

    runner = ssh_runner(sshd_server.host(port=free_port(), connect_timeout=3), base_dir=Path("/"))
    with pytest.raises(RemoteError) as info:
        runner.run(["true"], timeout=5)
    assert "127.0.0.1" in str(info.value)

"""One authenticated SSH connection with strict host-key checking.

`connect(host, base_dir)` opens a paramiko transport to `host.address:port`
as `host.user` with the key in `host.key_file`, checks the server's host key
against `host.known_hosts` (relative paths resolve against `base_dir`) and
sets a keepalive. Failures raise `RemoteError` subclasses that name the host;
host-key problems raise `HostKeyError` with the presented key's SHA256
fingerprint, in the form `ssh-keygen -l` prints.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

from recoveryd.config import Host
from recoveryd.errors import HostKeyError, RemoteError


def host_fingerprint(key: paramiko.PKey) -> str:
    """`SHA256:...` fingerprint of a public key, as OpenSSH prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_label(host: Host) -> str:
    """`user@address:port`, the name errors use for a host."""
    return f"{host.user}@{host.address}:{host.port}"


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse every key that is not in known_hosts, naming the fingerprint."""

    def __init__(self, label: str, known_hosts: Path) -> None:
        self._label = label
        self._known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise HostKeyError(
            f"ssh {self._label}: unknown host key {key.get_name()} {host_fingerprint(key)}; "
            f"verify it out of band and add it to {self._known_hosts}"
        )


@dataclass
class SshConnection:
    """An open, authenticated connection; `close()` is idempotent."""

    host: Host
    client: paramiko.SSHClient
    label: str

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def transport(self) -> paramiko.Transport:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise RemoteError(f"ssh {self.label}: the connection was lost; retry the operation")
        return transport

    def open_channel(self, timeout: float) -> paramiko.Channel:
        """A new session channel on this connection."""
        with self._lock:
            try:
                return self.transport.open_session(timeout=timeout)
            except (paramiko.SSHException, OSError) as exc:
                raise RemoteError(
                    f"ssh {self.label}: cannot open a session ({exc}); check the server's "
                    "MaxSessions and that it is still reachable"
                ) from None

    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def close(self) -> None:
        self.client.close()


def _resolve(base_dir: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base_dir / p


def connect(host: Host, *, base_dir: Path) -> SshConnection:
    """Open and authenticate a connection to `host`; HostKeyError / RemoteError on failure."""
    label = host_label(host)
    known_hosts = _resolve(base_dir, host.known_hosts)
    key_file = _resolve(base_dir, host.key_file)
    if not known_hosts.is_file():
        raise HostKeyError(
            f"ssh {label}: known_hosts file {known_hosts} not found; create it with the "
            "host's verified key (ssh-keyscan, checked out of band)"
        )
    if not key_file.is_file():
        raise RemoteError(f"ssh {label}: key_file {key_file} not found; set hosts.*.key_file")
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(known_hosts))
    except (OSError, paramiko.SSHException) as exc:
        raise HostKeyError(f"ssh {label}: cannot read known_hosts {known_hosts}: {exc}") from None
    client.set_missing_host_key_policy(_RefuseUnknown(label, known_hosts))
    try:
        client.connect(
            host.address,
            port=host.port,
            username=host.user,
            key_filename=str(key_file),
            timeout=host.connect_timeout,
            banner_timeout=host.connect_timeout,
            auth_timeout=host.connect_timeout,
            channel_timeout=host.connect_timeout,
            look_for_keys=False,
            allow_agent=False,
        )
    except HostKeyError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            f"ssh {label}: host key changed: it presented {exc.key.get_name()} "
            f"{host_fingerprint(exc.key)} but {known_hosts} has "
            f"{host_fingerprint(exc.expected_key)}; refusing to connect (possible "
            "impersonation); if the host was rebuilt, verify and update known_hosts"
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        raise RemoteError(
            f"ssh {label}: authentication with {key_file} was refused; install its public "
            "key for that user on the host"
        ) from None
    except TimeoutError:
        client.close()
        raise RemoteError(
            f"ssh {label}: no answer within {host.connect_timeout:g}s; check the address, "
            "port and firewall"
        ) from None
    except (paramiko.SSHException, OSError) as exc:
        client.close()
        raise RemoteError(f"ssh {label}: cannot connect ({exc}); check the host is up") from None
    transport = client.get_transport()
    if transport is not None and host.keepalive > 0:
        transport.set_keepalive(max(1, int(host.keepalive)))
    return SshConnection(host, client, label)

"""SSH runners for the hosts a playbook names, opened lazily and closed at the end."""

from __future__ import annotations

import threading
from pathlib import Path

from recoveryd.config import Host
from recoveryd.errors import ConfigError
from recoveryd.remote import SshRunner, ssh_runner


class HostRunners:
    def __init__(self, hosts: dict[str, Host], base_dir: Path) -> None:
        self.hosts = hosts
        self.base_dir = base_dir
        self._runners: dict[str, SshRunner] = {}
        self._lock = threading.Lock()

    def for_host(self, name: str | None) -> SshRunner:
        if name is None or name not in self.hosts:
            raise ConfigError(f'unknown host "{name}"; define it under hosts')
        with self._lock:
            if name not in self._runners:
                self._runners[name] = ssh_runner(self.hosts[name], base_dir=self.base_dir)
            return self._runners[name]

    def close(self) -> None:
        with self._lock:
            for runner in self._runners.values():
                runner.close()
            self._runners.clear()

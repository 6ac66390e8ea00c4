"""End-to-end helpers: a deployment (config file, key, targets, sources) driven through the CLI.

`deployment` gives a `Deployment` in a temp dir: `.configure(targets=, sources=)` writes
recoveryd.yaml (and generates the master key once); `.cli(*args)` runs
`recoveryd.cli.main.main` in-process and returns a `Result` (exit code, stdout,
stderr, parsed JSON when `--json`); `.spawn(*args)` starts `python -m recoveryd`
as a subprocess (for signals).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from recoveryd.cli.main import main
from tests.initrepo import init_repositories


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def data(self) -> Any:
        return json.loads(self.out)

    def expect(self, code: int = 0) -> Result:
        assert self.code == code, f"exit {self.code} (expected {code})\n{self.out}\n{self.err}"
        assert "Traceback" not in self.err, self.err
        return self


@dataclass
class Deployment:
    dir: Path
    cipher: str = "aes-256-gcm"
    targets: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.dir / "recoveryd.yaml"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    @property
    def key_file(self) -> Path:
        return self.dir / "keys" / "master.key"

    def configure(
        self,
        *,
        targets: dict[str, Any] | None = None,
        sources: dict[str, Any] | None = None,
        cipher: str | None = None,
        hosts: dict[str, Any] | None = None,
        init: bool = True,
    ) -> Deployment:
        """Write recoveryd.yaml; create the master key the first time; then (unless `init`
        is False) `recoveryd init` every target that holds no repository yet."""
        if targets is not None:
            self.targets = targets
        if sources is not None:
            self.sources = sources
        if cipher is not None:
            self.cipher = cipher
        if hosts is not None:
            self.hosts = hosts
        doc = {
            "state_dir": str(self.state_dir),
            "encryption": {"key_file": str(self.key_file), "cipher": self.cipher},
            "targets": self.targets,
            "sources": self.sources,
            "hosts": self.hosts,
        }
        self.config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        if not self.key_file.exists():
            self.cli("key", "generate").expect(0)
        if init:
            init_repositories(self.config)
        return self

    def cli(self, *args: str) -> Result:
        """`recoveryd --config <file> ARGS...` in-process."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--config", str(self.config), *args])
        return Result(code, out.getvalue(), err.getvalue())

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """`python -m recoveryd --config <file> ARGS...` as a child process."""
        return subprocess.Popen(
            [sys.executable, "-m", "recoveryd", "--config", str(self.config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def snapshots(self, *args: str) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = self.cli("--json", "snapshots", *args).expect(0).data
        return docs

    def backup(self, *args: str) -> list[dict[str, Any]]:
        snaps: list[dict[str, Any]] = (
            self.cli("--json", "backup", *args).expect(0).data["snapshots"]
        )
        return snaps


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A fresh deployment folder (config, key, state) under tmp_path."""
    d = tmp_path / "deploy"
    d.mkdir()
    yield Deployment(d)


def fs_target(path: Path) -> dict[str, Any]:
    return {"kind": "filesystem", "path": str(path)}

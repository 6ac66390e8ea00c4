"""Fuzz targets: each takes arbitrary bytes and must end in the product's documented error
for bad input, never in another exception.

- `config`: the bytes as a configuration file -> `load_config` (ConfigError);
- `playbook`: the bytes as a playbook -> `load_playbook` (ConfigError);
- `manifest`: the bytes as a decrypted manifest -> `decode_manifest` (ValueError);
- `journal`: the bytes as a drill journal -> `HashChain.records` and `verify_journal`
  (no exception: a damaged journal is a verdict, not a crash).

`run_atheris.py` drives them with atheris (`make fuzz`); `test_fuzz_seeds.py` runs them
on the seed corpus and seeded mutations of it in the ordinary test run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from recoveryd.chain import HashChain
from recoveryd.config import load_config
from recoveryd.drills.journal import verify_journal
from recoveryd.drills.loader import load_playbook
from recoveryd.errors import ConfigError
from recoveryd.repo.manifest import decode_manifest

SEEDS = Path(__file__).resolve().parent / "seeds"
_WORK = Path(tempfile.mkdtemp(prefix="recoveryd-fuzz-"))


def _as_file(data: bytes, name: str) -> Path:
    path = _WORK / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


def config_input(data: bytes) -> None:
    with contextlib.suppress(ConfigError):
        load_config(_as_file(data, "recoveryd.yaml"))


def playbook_input(data: bytes) -> None:
    with contextlib.suppress(ConfigError):
        load_playbook(_as_file(data, "playbook.yaml"), vars={})


def manifest_input(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode_manifest(data)


def journal_input(data: bytes) -> None:
    path = _as_file(data, "journal.jsonl")
    list(HashChain(path).records())
    verify_journal(path)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "config": config_input,
    "playbook": playbook_input,
    "manifest": manifest_input,
    "journal": journal_input,
}


def seeds(target: str) -> list[bytes]:
    """The seed corpus of a target (files under `seeds/<target>/`)."""
    folder = SEEDS / target
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()]

"""Test doubles for the daemon: operations that record calls, a scripted admission."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from recoveryd import flow
from recoveryd.config import LoadedConfig, load_config
from recoveryd.daemon.jobs import Outcome
from recoveryd.daemon.schedule import JobSpec


def write_config(tmp: Path, body: str = "") -> LoadedConfig:
    path = tmp / "recoveryd.yaml"
    path.write_text(
        f"state_dir: {tmp / 'state'}\n"
        "encryption: {key_file: master.key}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp / 'store'}}}}}\n" + body
    )
    return load_config(path)


class FakeOps:
    """Operations that record their calls; `block` holds a backup until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.fail: set[str] = set()
        self.block = threading.Event()
        self.block.set()
        self.entered = threading.Event()
        self.snapshots: dict[str, datetime] = {}
        self.anchors = 0
        self.lock = threading.Lock()
        self.raises: dict[str, Exception] = {}  # job id -> what the operation raises
        self.outcomes: dict[str, Outcome] = {}  # job id -> what the operation returns

    def _call(self, kind: str, name: str | None) -> Outcome:
        with self.lock:
            self.calls.append((kind, name))
        self.entered.set()
        self.block.wait(10)
        job = f"{kind}:{name}" if name else kind
        if job in self.raises:
            raise self.raises[job]
        if job in self.outcomes:
            return self.outcomes[job]
        if f"{kind}:{name}" in self.fail:
            return Outcome("failed", error=f"{kind} of {name} failed password=hunter22")
        return Outcome("ok", bytes_read=100, bytes_stored=10, snapshot_ids=(f"snap-{name}",))

    def backup(
        self, cfg: LoadedConfig, source: str, *, gate: flow.Gate, cancel: threading.Event
    ) -> Outcome:
        return self._call("backup", source)

    def verify(self, cfg: LoadedConfig, source: str, read_data: bool | str) -> Outcome:
        return self._call("verify", source)

    def prune(self, cfg: LoadedConfig) -> Outcome:
        return self._call("prune", None)

    def replicate(self, cfg: LoadedConfig) -> Outcome:
        return self._call("replicate", None)

    def drill(self, cfg: LoadedConfig, spec: JobSpec, *, cancel: threading.Event) -> Outcome:
        return self._call("drill", spec.playbook)

    def restore_drill(self, cfg: LoadedConfig, source: str, *, cancel: threading.Event) -> Outcome:
        return self._call("restore_drill", source)

    def prepare(self, cfg: LoadedConfig) -> None:
        return None

    def last_snapshots(self, cfg: LoadedConfig) -> dict[str, datetime]:
        return dict(self.snapshots)

    def anchor(self, cfg: LoadedConfig) -> None:
        with self.lock:
            self.anchors += 1

    def last_copies(self, cfg: LoadedConfig) -> dict[tuple[str, str], datetime]:
        return {(source, "local"): at for source, at in self.snapshots.items()}


class ScriptedAdmission(flow.AlwaysAdmit):
    """Answers from a script; remembers every question."""

    def __init__(self, answer: str = "run") -> None:
        super().__init__()
        self.answer = answer
        self.asked: list[tuple[str, str, bool]] = []

    def admit(self, priority: str, *, job: str, due_soon: bool = False) -> str:
        self.asked.append((priority, job, due_soon))
        return self.answer

"""Run the shedding playbooks in tests: through `recoveryd.drills.api` when it is there,
else through a tiny runner of the step kinds they use (run, http, wait, with rollbacks
in reverse order) so that the playbooks' commands are still exercised for real."""

from __future__ import annotations

import importlib
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.nginx import http_status


@dataclass(frozen=True)
class MiniResult:
    status: str
    run_id: str = "mini"
    error: str | None = None
    measures: Mapping[str, int] = field(default_factory=dict)


def have_drills() -> bool:
    try:
        importlib.import_module("recoveryd.drills.api")
    except ImportError:
        return False
    return True


def _subst(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: variables[m.group(1)], value)
    if isinstance(value, list):
        return [_subst(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _subst(v, variables) for k, v in value.items()}
    return value


def _seconds(text: str) -> float:
    text = str(text)
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text.rstrip("s"))


def _do(step: Mapping[str, Any]) -> None:
    if "run" in step:
        subprocess.run(step["run"], check=True, capture_output=True, timeout=60)
    elif "http" in step:
        for _ in range(int(step.get("retries", 0)) + 1):
            if http_status(step["http"]["url"]) == step["expect"]["status"]:
                return
            time.sleep(_seconds(step.get("delay", "0.5s")))
        raise AssertionError(f"{step['name']}: unexpected status")
    elif "wait" in step:
        probe = step["wait"]
        deadline = time.monotonic() + _seconds(step.get("timeout", "30s"))
        while http_status(probe["http"]["url"]) != probe["expect"]["status"]:
            if time.monotonic() > deadline:
                raise TimeoutError(step["name"])
            time.sleep(_seconds(step.get("interval", "200ms")))
    else:
        raise NotImplementedError(step)


def mini_run(path: Path, variables: Mapping[str, str]) -> MiniResult:
    doc = yaml.safe_load(path.read_text())
    merged = {**doc.get("vars", {}), **variables}
    done: list[Mapping[str, Any]] = []
    try:
        for raw in doc["steps"]:
            step = _subst(raw, merged)
            _do(step)
            done.append(step)
    except Exception as exc:  # noqa: BLE001 - a failed drill rolls back, like the real runner
        for step in reversed(done):
            if "rollback" in step:
                _do({"name": "rollback", **step["rollback"]})
        return MiniResult("failed", error=str(exc))
    return MiniResult("passed")


def playbook_runner(
    cfg: Any, variables: Mapping[str, str], *, state_dir: Path | None = None
) -> Callable[..., Any]:
    """run_playbook(path, level) for the governor: the drill runner if present, else the
    mini one. `level` (the governor's own) is optional, for tests that run a playbook alone."""

    api = importlib.import_module("recoveryd.drills.api") if have_drills() else None
    if api is not None:  # warm: the first level change must not wait for imports
        importlib.import_module("recoveryd.drills.runner")
        importlib.import_module("recoveryd.reports")

    def run(path: Path, level: Callable[[], str] | None = None) -> Any:
        if api is not None:
            result = api.run_playbook(
                cfg, path, yes=True, vars=dict(variables), state_dir=state_dir, level=level
            )
        else:
            result = mini_run(path, variables)
        if result.status != "passed":
            raise RuntimeError(f"{path.name}: {result.status}")
        return result

    return run

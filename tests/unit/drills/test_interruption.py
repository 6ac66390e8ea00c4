"""Aborts and interrupts with local commands: destructive steps finish once started, the
journal says when an abort arrived and when it took effect, and signals are `interrupted`
(exit 130) while stop conditions are `aborted` (exit 4)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from recoveryd.drills.api import list_runs, run_playbook
from tests.unit.drills.helpers import (
    cli,
    cli_popen,
    only_journal,
    records,
    watched_playbook,
    write_playbook,
)

HEAD = """\
apiVersion: recoveryd/v1
kind: Drill
name: local
"""


def _gated_book(tmp_path: Path, modifiers: str) -> Path:
    """A drill whose first step breaks a watched flag (so its stop condition trips), then
    keeps working until the file `go` appears, then writes `finished`."""
    flag = tmp_path / "healthy"
    return watched_playbook(
        tmp_path,
        HEAD,
        f"""\
steps:
  - name: long destructive work
    run: [sh, -c, 'rm "$0"; while [ ! -e "$1" ]; do sleep 0.02; done; touch "$2"',
          "{flag}", "{tmp_path / "go"}", "{tmp_path / "finished"}"]
    timeout: 120s
    {modifiers}
  - name: never reached
    run: [touch, "{tmp_path / "next"}"]
""",
    )


def _release_on_trip(tmp_path: Path) -> Any:
    """A journal listener that lets the gated step finish once the abort was journaled."""

    def listener(rec: dict[str, Any]) -> None:
        if rec["type"] == "abort":
            (tmp_path / "go").touch()

    return listener


def test_a_stop_condition_during_a_destructive_step_waits_for_the_step_to_end(
    tmp_path: Path,
) -> None:
    """A stop condition tripping while a destructive step runs does not kill it: the step
    finishes, the abort takes effect after it (journaled when it arrived and when it took
    effect), the next step never starts, and the run is `aborted` (exit 4)."""
    book = _gated_book(tmp_path, "destructive: true")
    result = run_playbook(
        None, book, state_dir=tmp_path / "state", yes=True, listener=_release_on_trip(tmp_path)
    )
    assert (tmp_path / "finished").exists()
    assert not (tmp_path / "next").exists()
    assert result.status == "aborted"
    assert int(result.exit_code) == 4
    step = records(result.journal, "step")[0]
    assert step["status"] == "ok"
    arrived, effective = records(result.journal, "abort")
    assert arrived["status"] == "requested"
    assert arrived["cause"] == "stop_condition"
    assert arrived["during"] == "long destructive work"
    assert arrived["deferred"] is True
    assert effective["status"] == "effective"
    assert effective["requested_at"] == arrived["time"]
    assert step["end"] <= effective["time"]
    assert step["start"] <= arrived["time"] <= step["end"]


def test_an_interruptible_destructive_step_stops_at_once(tmp_path: Path) -> None:
    """`interruptible: true` lets an abort stop a destructive step at once."""
    book = _gated_book(tmp_path, "destructive: true\n    interruptible: true")
    result = run_playbook(None, book, state_dir=tmp_path / "state", yes=True)
    assert not (tmp_path / "finished").exists()
    assert result.status == "aborted"
    assert records(result.journal, "step")[0]["status"] == "aborted"
    arrived = records(result.journal, "abort")[0]
    assert arrived["deferred"] is False


def test_a_non_destructive_step_stops_at_once(tmp_path: Path) -> None:
    """An abort stops a step that is not destructive at once, as before."""
    book = _gated_book(tmp_path, "")
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert not (tmp_path / "finished").exists()
    assert records(result.journal, "step")[0]["status"] == "aborted"
    arrived, effective = records(result.journal, "abort")
    assert (arrived["status"], arrived["deferred"]) == ("requested", False)
    assert effective["status"] == "effective"


def _wait_for(path: Path, type_: str, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Poll the journal at `path` until a record of `type_` appears (the drill runs on)."""
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, f"no {type_} record"
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            found = [r for r in journal_lines(path) if r["type"] == type_]
            if found:
                return found[0]
        time.sleep(0.05)


def journal_lines(path: Path) -> list[dict[str, Any]]:
    """Complete lines only: the drill may be writing the next one."""
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def test_sigterm_during_a_destructive_step_is_deferred_and_a_second_one_interrupts(
    tmp_path: Path,
) -> None:
    """The first SIGTERM during a destructive step is deferred (the step keeps running); a
    second SIGTERM stops it at once; the run is `interrupted` and exits 130."""
    state = tmp_path / "state"
    started, finished = tmp_path / "started", tmp_path / "finished"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: destructive work
    run: [sh, -c, 'touch "$0"; sleep 119.5; touch "$1"', "{started}", "{finished}"]
    destructive: true
""",
    )
    proc = cli_popen("drill", "--state-dir", str(state), "run", "--yes", str(book))
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "the step never started"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        path = only_journal(state)
        proc.send_signal(signal.SIGTERM)
        arrived = _wait_for(path, "abort", proc)
        assert arrived["cause"] == "signal" and arrived["deferred"] is True
        assert subprocess.run(["pgrep", "-f", "sleep 119.5"], check=False).returncode == 0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert not finished.exists()
    assert records(path, "step")[0]["status"] == "aborted"
    aborts = [r["status"] for r in records(path, "abort")]
    assert aborts == ["requested", "forced", "effective"]
    assert records(path, "run_finished")[0]["status"] == "interrupted"


def test_sigterm_is_journaled_as_interrupted_and_shown_so(tmp_path: Path) -> None:
    """A signal ends the run `interrupted` (exit 130), not `aborted`: in the journal, in
    `drill run --json` and in `drill list`."""
    state = tmp_path / "state"
    started = tmp_path / "started"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: long
    run: [sh, -c, 'touch "$0"; exec sleep 119.25', "{started}"]
""",
    )
    proc = cli_popen("--json", "drill", "--state-dir", str(state), "run", str(book))
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the step never started"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert json.loads(out)["status"] == "interrupted"
    assert list_runs(state)[0].status == "interrupted"
    listed = cli("drill", "--state-dir", str(state), "list")
    assert "interrupted" in listed.stdout


def test_list_verify_fails_when_a_recorded_runs_journal_or_directory_is_gone(
    tmp_path: Path,
) -> None:
    """A run the state database records whose journal, or whole directory, was deleted is a
    `drill list --verify` failure (exit 3) naming the run."""
    state = tmp_path / "state"
    book = write_playbook(tmp_path, HEAD + "steps:\n  - {name: one, run: [echo, hello]}\n")
    first = run_playbook(None, book, state_dir=state)
    second = run_playbook(None, book, state_dir=state)
    assert cli("drill", "--state-dir", str(state), "list", "--verify").returncode == 0
    first.journal.unlink()
    shutil.rmtree(second.journal.parent)
    bad = cli("drill", "--state-dir", str(state), "list", "--verify")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert first.run_id in bad.stdout and second.run_id in bad.stdout
    assert "Traceback" not in bad.stderr
    missing = {r.run_id: r for r in list_runs(state, verify=True)}
    assert missing[first.run_id].intact is False
    assert missing[second.run_id].intact is False
    assert "deleted" in str(missing[second.run_id].problem)

"""The drill runner with local commands: order of a run, rollbacks, aborts, the journal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from recoveryd.drills.api import list_runs, run_playbook
from recoveryd.drills.journal import verify_journal
from recoveryd.errors import RefusedError
from tests.unit.drills.helpers import cli, cli_popen, journal, only_journal, records, write_playbook

HEAD = """\
apiVersion: recoveryd/v1
kind: Drill
name: local
"""


def _rollback_book(tmp_path: Path, last: str) -> Path:
    log = tmp_path / "log"
    return write_playbook(
        tmp_path,
        HEAD
        + f"""
vars: {{log: "{log}"}}
steady_state:
  - {{name: log file writable, run: [touch, "{{{{ log }}}}"]}}
steps:
  - name: A
    run: [sh, -c, 'echo A >> "$0"', "{{{{ log }}}}"]
    rollback: {{name: undo A, run: [sh, -c, 'echo undo-A >> "$0"', "{{{{ log }}}}"]}}
  - name: B
    run: [sh, -c, 'echo B >> "$0"', "{{{{ log }}}}"]
    rollback: {{name: undo B, run: [sh, -c, 'echo undo-B >> "$0"', "{{{{ log }}}}"]}}
  - name: C
    {last}
    rollback: {{name: undo C, run: [sh, -c, 'echo undo-C >> "$0"', "{{{{ log }}}}"]}}
""",
    )


def test_failing_step_rolls_back_completed_steps_in_reverse_and_rechecks_steady_state(
    tmp_path: Path,
) -> None:
    """When a step fails, the rollbacks of the completed steps run newest first (not the
    failed step's), then steady state is checked again; the run is failed."""
    book = _rollback_book(tmp_path, "run: [sh, -c, 'exit 3']")
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "failed"
    assert not result.objectives_met
    assert (tmp_path / "log").read_text().split() == ["A", "B", "undo-B", "undo-A"]
    recs = journal(result.journal)
    assert [r["name"] for r in recs if r["type"] == "rollback"] == ["undo B", "undo A"]
    phases = [(r["phase"], r["status"]) for r in recs if r["type"] == "phase"]
    assert ("steady_state_after", "passed") in phases
    assert phases.index(("rollback", "started")) < phases.index(("steady_state_after", "started"))
    failed = next(r for r in recs if r["type"] == "step" and r["name"] == "C")
    assert failed["status"] == "failed"
    assert "exit status 3" in failed["error"]
    assert recs[-1]["type"] == "run_finished"
    assert recs[-1]["status"] == "failed"


def test_retries_then_success_needs_no_rollback(tmp_path: Path) -> None:
    """A step with retries that succeeds on a later attempt records the attempts and passes."""
    counter = tmp_path / "n"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: flaky
    run: [sh, -c, 'echo x >> {counter}; test $(wc -l < {counter}) -ge 3']
    retries: 3
    delay: 10ms
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "passed"
    step = records(result.journal, "step")[0]
    assert step["attempts"] == 3


def test_stop_condition_turning_false_aborts_and_rolls_back(tmp_path: Path) -> None:
    """A stop condition that fails mid-run aborts the drill: running step stopped, rollbacks run."""
    flag = tmp_path / "healthy"
    flag.write_text("")
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
stop_conditions:
  - {{name: service healthy, run: [test, -e, "{flag}"], interval: 100ms}}
steps:
  - name: break the service
    run: [rm, "{flag}"]
    rollback: {{name: repair the service, run: [touch, "{flag}"]}}
  - name: long work
    sleep: 60s
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "aborted"
    long_work = next(r for r in records(result.journal, "step") if r["name"] == "long work")
    assert long_work["status"] == "aborted"  # cut short, not waited out
    assert flag.exists()  # rolled back
    tripped = records(result.journal, "stop_condition")
    assert tripped and tripped[0]["name"] == "service healthy"
    assert tripped[0]["status"] == "tripped"
    assert [r["name"] for r in records(result.journal, "rollback")] == ["repair the service"]


def test_destructive_step_without_yes_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """A destructive step needs --yes (or approvals): refused with exit 5, nothing executed."""
    marker = tmp_path / "ran"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - {{name: harmless, run: [touch, "{marker}"]}}
  - {{name: dangerous, run: ["true"], destructive: true}}
""",
    )
    with pytest.raises(RefusedError):
        run_playbook(None, book, state_dir=tmp_path / "state")
    assert not marker.exists()
    done = cli("drill", "--state-dir", str(tmp_path / "state"), "run", str(book))
    assert done.returncode == 5
    assert "--yes" in done.stderr


def test_shell_metacharacters_in_a_variable_stay_one_argument(tmp_path: Path) -> None:
    """A --var value full of shell syntax reaches the program as one literal argument."""
    out = tmp_path / "out"
    pwned = tmp_path / "pwned"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
vars: {{value: plain}}
steps:
  - name: write the value
    run: [sh, -c, 'printf %s "$1" > "$0"', "{out}", "{{{{ value }}}}"]
  - name: shell step quotes values
    shell: true
    run: "printf %s {{{{ value }}}} > {out}.shell"
""",
    )
    nasty = f"x; touch {pwned}; $(touch {pwned}) `touch {pwned}` 'q"
    result = run_playbook(None, book, state_dir=tmp_path / "state", vars={"value": nasty})
    assert result.status == "passed", result.error
    assert out.read_text() == nasty
    assert Path(f"{out}.shell").read_text() == nasty
    assert not pwned.exists()


def test_dry_run_runs_probes_and_describes_steps_without_changing_anything(tmp_path: Path) -> None:
    """--dry-run executes preflight and steady-state probes, shows resolved steps, runs none."""
    marker = tmp_path / "changed"
    probe = tmp_path / "probed"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
vars: {{target: "{marker}"}}
preflight:
  - {{name: probe, run: [touch, "{probe}"]}}
steps:
  - {{name: change, run: [touch, "{{{{ target }}}}"], destructive: true}}
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state", dry_run=True)
    assert result.status == "passed"
    assert probe.exists()
    assert not marker.exists()
    step = records(result.journal, "step")[0]
    assert step["status"] == "dry_run"
    assert str(marker) in step["output"]


def test_secrets_are_redacted_and_long_output_truncated(tmp_path: Path) -> None:
    """Secret variables and DSN passwords never reach the journal; long output is cut, noted."""
    book = write_playbook(
        tmp_path,
        HEAD
        + """
vars: {db_password: "s3cr3t-value"}
steps:
  - name: leak attempt
    run:
      - sh
      - -c
      - >-
        echo "pw={{ db_password }} dsn=host=x password=hunter22";
        head -c 50000 /dev/zero | tr "\\0" x

""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    text = result.journal.read_text()
    assert "s3cr3t-value" not in text
    assert "hunter22" not in text
    step = records(result.journal, "step")[0]
    assert "characters truncated" in step["output"]


def test_one_byte_edit_of_a_journal_is_detected_by_list_verify(tmp_path: Path) -> None:
    """`drill list --verify` reports an altered journal and exits 3."""
    state = tmp_path / "state"
    book = write_playbook(tmp_path, HEAD + "steps:\n  - {name: one, run: [echo, hello]}\n")
    run_playbook(None, book, state_dir=state)
    ok = cli("drill", "--state-dir", str(state), "list", "--verify")
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    path = only_journal(state)
    data = bytearray(path.read_bytes())
    pos = data.index(b"hello")
    data[pos] = ord("j")
    path.write_bytes(bytes(data))
    bad = cli("drill", "--state-dir", str(state), "list", "--verify")
    assert bad.returncode == 3
    assert "TAMPERED" in bad.stdout
    assert str(path) in bad.stderr
    assert list_runs(state, verify=True)[0].intact is False


def test_sigterm_mid_drill_rolls_back_and_rechecks_steady_state(tmp_path: Path) -> None:
    """SIGTERM to `recoveryd drill run` stops the running step, rolls back, re-checks steady
    state, and exits 130."""
    state = tmp_path / "state"
    started = tmp_path / "started"
    undone = tmp_path / "undone"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steady_state:
  - {{name: always, run: ["true"]}}
steps:
  - name: first
    run: [touch, "{started}"]
    rollback: {{name: undo first, run: [touch, "{undone}"]}}
  - name: long
    run: [sleep, "119.75"]
""",
    )
    proc = cli_popen("drill", "--state-dir", str(state), "run", str(book))
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the drill never started"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    while subprocess.run(["pgrep", "-f", "sleep 119.75"], capture_output=True).returncode:
        assert time.monotonic() < deadline, "the long step never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert undone.exists()
    path = only_journal(state)
    assert [r["name"] for r in records(path, "rollback")] == ["undo first"]
    phases = [(r["phase"], r["status"]) for r in records(path, "phase")]
    assert ("steady_state_after", "passed") in phases
    assert records(path, "run_finished")[0]["status"] == "interrupted"


def test_lock_refuses_a_second_run_of_the_same_drill(tmp_path: Path) -> None:
    """One drill per target system: a second run of the same playbook is refused while the
    first one runs."""
    state = tmp_path / "state"
    book = write_playbook(tmp_path, HEAD + "steps:\n  - {name: wait, sleep: 30s}\n")
    cancel = threading.Event()
    box: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: box.update(r=run_playbook(None, book, state_dir=state, cancel=cancel))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not list((state / "drills").glob("*/journal.jsonl")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(RefusedError) as info:
            run_playbook(None, book, state_dir=state)
        assert "already running" in str(info.value)
    finally:
        cancel.set()
        thread.join(30)


def test_shedding_events_during_the_run_are_journaled(tmp_path: Path) -> None:
    """Level changes the governor recorded while the drill ran appear as `event` records."""
    state = tmp_path / "state"
    script = (
        "import sys; from recoveryd.state import StateStore; "
        "StateStore(sys.argv[1]).record_event('level_change', {'from': 'normal', 'to': 'critical'})"
    )
    book = write_playbook(
        tmp_path,
        HEAD + "steps:\n  - name: surge\n"
        f"    run: ['{sys.executable}', -c, \"{script}\", '{state}']\n",
    )
    result = run_playbook(None, book, state_dir=state)
    assert result.status == "passed", result.error
    events = records(result.journal, "event")
    assert [(e["kind"], e["data"]["to"]) for e in events] == [("level_change", "critical")]
    assert journal(result.journal)[-1]["type"] == "run_finished"


def test_pressure_stop_condition_reads_a_running_daemons_level(tmp_path: Path) -> None:
    """`pressure: below critical` trips when the daemon's status says the level is critical."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "daemon.json").write_text(json.dumps({"level": "critical"}))
    book = write_playbook(
        tmp_path,
        HEAD
        + """
stop_conditions:
  - {name: not overloaded, pressure: below critical, interval: 100ms}
steps:
  - {name: work, sleep: 30s}
""",
    )
    result = run_playbook(None, book, state_dir=state)
    assert result.status == "aborted"
    assert records(result.journal, "stop_condition")[0]["detail"] == "pressure is critical"


def test_when_false_skips_a_step(tmp_path: Path) -> None:
    """`when` evaluating to false skips the step (journaled as skipped); true runs it."""
    ran = tmp_path / "ran"
    skipped = tmp_path / "skipped"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
vars: {{mode: quick}}
steps:
  - {{name: full only, run: [touch, "{skipped}"], when: "{{{{ mode == 'full' }}}}"}}
  - {{name: quick only, run: [touch, "{ran}"], when: "{{{{ mode == 'quick' }}}}"}}
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    assert ran.exists()
    assert not skipped.exists()
    assert [s["status"] for s in records(result.journal, "step")] == ["skipped", "ok"]


def test_a_stop_condition_false_from_the_start_prevents_every_step(tmp_path: Path) -> None:
    """Stop conditions are checked once before the first step: if one fails, nothing runs."""
    marker = tmp_path / "changed"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
stop_conditions:
  - {{name: maintenance window open, run: [test, -e, "{tmp_path}/window-open"]}}
steps:
  - {{name: change, run: [touch, "{marker}"]}}
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "aborted"
    assert not marker.exists()
    assert records(result.journal, "step") == []


def test_a_byte_edited_into_invalid_utf8_is_reported_as_tampering(tmp_path: Path) -> None:
    """An edit that leaves a byte that is not UTF-8 is reported by `drill list --verify` (exit
    3) and by the run's report, instead of crashing either."""
    from recoveryd.reports import render_run_report

    state = tmp_path / "state"
    book = write_playbook(tmp_path, HEAD + "steps:\n  - {name: one, run: [echo, hello]}\n")
    result = run_playbook(None, book, state_dir=state)
    path = only_journal(state)
    data = bytearray(path.read_bytes())
    data[data.index(b"hello")] = 0xFF
    path.write_bytes(bytes(data))
    bad = cli("drill", "--state-dir", str(state), "list", "--verify")
    assert bad.returncode == 3, bad.stderr
    assert "TAMPERED" in bad.stdout
    assert "Traceback" not in bad.stderr
    report = render_run_report(state, result.run_id, fmt="md", out=tmp_path / "r.md")
    text = report.read_text()
    assert text.index("WARNING: this record was altered") < text.index("## Objectives")


def test_a_measure_step_puts_its_count_in_the_result(tmp_path: Path) -> None:
    """A step with `measure: NAME` hands the first whole number of its output to the run's
    result under NAME (the shedding playbook counts nginx's 503s this way)."""
    book = write_playbook(
        tmp_path,
        HEAD
        + "steps:\n"
        + "  - {name: count, run: [echo, '42 /var/log/shed.log'], measure: requests_shed}\n"
        + "  - {name: plain, run: [echo, '7']}\n",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    assert result.measures == {"requests_shed": 42}


def test_a_shell_step_written_as_a_list_quotes_its_variables_too(tmp_path: Path) -> None:
    """`shell: true` with `run` as a list joins the words into one shell line; a variable
    full of shell syntax in one of the words is still one literal word, never run."""
    out = tmp_path / "out"
    pwned = tmp_path / "pwned"
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
vars: {{value: plain}}
steps:
  - name: shell step as a list
    shell: true
    run: [printf, "%s", "{{{{ value }}}}", ">", "{out}"]
""",
    )
    nasty = f"x; touch {pwned}; $(touch {pwned}) `touch {pwned}` 'q"
    result = run_playbook(None, book, state_dir=tmp_path / "state", vars={"value": nasty})
    assert result.status == "passed", result.error
    assert out.read_text() == nasty
    assert not pwned.exists()


def _rewrite_chain(path: Path, keep: int, change: dict[str, object] | None = None) -> None:
    """Rewrite a journal as someone who knows the format would: the first `keep` records,
    `change` applied to the last of them, every hash recomputed so the chain verifies."""
    from recoveryd.chain import GENESIS, record_hash

    prev = GENESIS
    lines = []
    for rec in journal(path)[:keep]:
        rec = {k: v for k, v in rec.items() if k not in ("prev", "hash")}
        if change and rec["seq"] == keep - 1:
            rec.update(change)
        rec["prev"] = prev
        rec["hash"] = prev = record_hash(rec)
        lines.append(json.dumps(rec, ensure_ascii=False, sort_keys=True))
    path.write_text("\n".join(lines) + "\n")


def test_records_cut_from_a_journal_or_a_rewritten_chain_are_detected(tmp_path: Path) -> None:
    """The state database keeps each run's journal head and length: a journal cut short, or
    rewritten with recomputed hashes (a failure turned into a pass), is reported by
    `drill list --verify` (exit 3) and by the report, although its own chain verifies."""
    state = tmp_path / "state"
    book = write_playbook(tmp_path, HEAD + "steps:\n  - {name: one, run: [sh, -c, 'exit 1']}\n")
    run_playbook(None, book, state_dir=state)
    path = only_journal(state)
    original = path.read_bytes()
    count = len(journal(path))
    assert list_runs(state, verify=True)[0].intact is True

    _rewrite_chain(path, count - 1)
    assert verify_journal(path).ok
    cut = cli("drill", "--state-dir", str(state), "list", "--verify")
    assert cut.returncode == 3, cut.stderr
    assert "TAMPERED" in cut.stdout

    path.write_bytes(original)
    _rewrite_chain(path, count, {"status": "passed", "objectives_met": True, "error": None})
    assert verify_journal(path).ok
    (forged,) = list_runs(state, verify=True)
    assert forged.status == "passed" and forged.intact is False
    from recoveryd.reports import load_report

    assert load_report(state, forged.run_id).tampered


def test_secrets_written_in_a_steps_env_or_headers_are_redacted(tmp_path: Path) -> None:
    """A token written straight into a step's `env` (or an HTTP header such as Authorization)
    is masked wherever it shows up in the journal, like a secret variable."""
    book = write_playbook(
        tmp_path,
        HEAD
        + """
steps:
  - name: echo the token
    run: [sh, -c, 'echo "the service said: $API_TOKEN"']
    env: {API_TOKEN: "lit3ral-t0ken-value"}
    rollback:
      name: undo
      run: ["true"]
      env: {DB_PASSWORD: "r0llback-passw0rd"}
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    text = result.journal.read_text()
    assert "the service said" in text
    assert "lit3ral-t0ken-value" not in text
    from recoveryd.drills.loader import load_playbook

    assert "r0llback-passw0rd" in load_playbook(book, None).secrets


def test_a_rollback_that_breaks_unexpectedly_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rollback failing with an unexpected error (a driver exception, say) is journaled as
    failed; the older rollbacks still run, steady state is checked, the run is finished."""
    import recoveryd.drills.runner as runner_module

    real = runner_module.execute

    def execute(step, ctx, timeout=None):  # type: ignore[no-untyped-def]
        if step.name == "undo B":
            raise RuntimeError("driver exploded")
        return real(step, ctx, timeout)

    monkeypatch.setattr(runner_module, "execute", execute)
    book = _rollback_book(tmp_path, "run: [sh, -c, 'exit 3']")
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "failed"
    assert (tmp_path / "log").read_text().split() == ["A", "B", "undo-A"]
    recs = journal(result.journal)
    rollbacks = [(r["name"], r["status"]) for r in recs if r["type"] == "rollback"]
    assert rollbacks == [("undo B", "failed"), ("undo A", "ok")]
    assert "driver exploded" in next(r for r in recs if r.get("name") == "undo B")["error"]
    phases = [(r["phase"], r["status"]) for r in recs if r["type"] == "phase"]
    assert ("rollback", "failed") in phases and ("steady_state_after", "passed") in phases
    assert recs[-1]["type"] == "run_finished"


def test_two_different_drills_on_the_same_host_do_not_run_at_once(tmp_path: Path) -> None:
    """One drill per target system: a second playbook, under another name, whose steps reach
    the same SSH host as a running drill is refused before it does anything."""
    state = tmp_path / "state"
    (tmp_path / "key").write_text("")
    (tmp_path / "known_hosts").write_text("")
    hosts = (
        "hosts:\n  db: {address: 127.0.0.1, port: 2222, user: ops, "
        f"key_file: {tmp_path}/key, known_hosts: {tmp_path}/known_hosts}}\n"
    )
    on_db = '  - {name: on db, ssh: db, run: ["true"]}\n'
    first = write_playbook(
        tmp_path,
        HEAD.replace("local", "failover-one")
        + hosts
        + "steps:\n  - {name: wait, sleep: 30s}\n"
        + on_db,
        name="one.yaml",
    )
    touched = tmp_path / "touched"
    second = write_playbook(
        tmp_path,
        HEAD.replace("local", "failover-two")
        + hosts
        + f'steps:\n  - {{name: local, run: [touch, "{touched}"]}}\n'
        + on_db,
        name="two.yaml",
    )
    cancel = threading.Event()
    thread = threading.Thread(
        target=lambda: run_playbook(None, first, state_dir=state, cancel=cancel)
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not list((state / "drills").glob("*/journal.jsonl")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(RefusedError) as info:
            run_playbook(None, second, state_dir=state)
        assert "127.0.0.1-2222" in str(info.value) and "already running" in str(info.value)
        assert not touched.exists()
    finally:
        cancel.set()
        thread.join(30)


def test_drill_run_writes_the_html_report_next_to_its_journal_and_prints_it(
    tmp_path: Path,
) -> None:
    """`recoveryd drill run` renders the HTML report into the run's directory, beside the
    journal, and prints its path."""
    state = tmp_path / "state"
    book = write_playbook(tmp_path, HEAD + "steps:\n  - {name: one, run: [echo, hello]}\n")
    done = cli("drill", "--state-dir", str(state), "run", str(book))
    assert done.returncode == 0, done.stderr
    journal_file = only_journal(state)
    line = next(x for x in done.stdout.splitlines() if x.startswith("report "))
    report = Path(line.removeprefix("report "))
    assert report.parent == journal_file.parent
    assert report.suffix == ".html"
    html = report.read_text(encoding="utf-8")
    assert journal_file.parent.name in html and 'id="timeline-chart"' in html


def test_a_secret_variable_printed_by_a_failing_step_never_reaches_the_state_database(
    tmp_path: Path,
) -> None:
    """A secret drill variable (`--var db_password=...`) that a failing step prints ends up
    in the run's error; the run recorded in `state.db` carries it masked, never in clear."""
    book = write_playbook(
        tmp_path,
        HEAD
        + """
vars: {db_password: "default-value"}
steps:
  - name: leaks and fails
    run: [sh, -c, 'echo "cannot log in with $0" >&2; exit 3', "{{ db_password }}"]
""",
    )
    marker = "st4te-db-Marker-91f2"
    state = tmp_path / "state"
    result = run_playbook(None, book, state_dir=state, vars={"db_password": marker})
    assert result.status == "failed"
    dumped = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file())
    assert marker.encode() not in dumped
    assert b"cannot log in with ***" in (state / "state.db").read_bytes() + dumped

"""Valid playbooks: variables, includes, hosts from the configuration, shipped playbooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from recoveryd.drills.loader import load_playbook
from tests.unit.drills.helpers import REPO, write_playbook

HEAD = "apiVersion: recoveryd/v1\nkind: Drill\nname: {name}\n"


def test_variables_default_and_override(tmp_path: Path) -> None:
    """`vars` give defaults, `--var` overrides them, and values land where `{{ }}` stood."""
    book = write_playbook(
        tmp_path,
        HEAD.format(name="v")
        + "vars: {port: 5432, host: db1}\n"
        + "steps:\n  - {name: x, run: [echo, '{{ host }}:{{ port }}'], timeout: '{{ port }}ms'}\n",
    )
    loaded = load_playbook(book, vars={"port": "6543"})
    step = loaded.playbook.steps[0]
    assert step.run == ["echo", "db1:6543"]
    assert step.timeout == pytest.approx(6.543)


def test_include_step_inlines_the_other_playbooks_steps_with_its_vars(tmp_path: Path) -> None:
    """An `include` step runs the other playbook's steps in its place, with the given vars."""
    write_playbook(
        tmp_path,
        HEAD.format(name="inner") + "vars: {who: nobody}\n"
        "steps:\n  - {name: greet, run: [echo, '{{ who }}']}\n",
        name="inner.yaml",
    )
    outer = write_playbook(
        tmp_path,
        HEAD.format(name="outer") + "steps:\n"
        "  - {name: first, run: [echo, 1]}\n"
        "  - {name: common, include: inner.yaml, vars: {who: operator}}\n",
    )
    steps = load_playbook(outer).playbook.steps
    assert [s.name for s in steps] == ["first", "common / greet"]
    assert steps[1].run == ["echo", "operator"]


def test_shipped_playbooks_validate() -> None:
    """Every playbook shipped in playbooks/ validates with its default variables."""
    books = sorted((REPO / "playbooks").glob("*.yaml"))
    assert {"pg-failover.yaml", "restore-drill.yaml", "object-store-loss.yaml"} <= {
        b.name for b in books
    }
    for book in books:
        assert load_playbook(book).playbook.steps


def test_secret_variables_are_known_for_redaction(tmp_path: Path) -> None:
    """Variables named like secrets are collected so the journal can mask them."""
    book = write_playbook(
        tmp_path,
        HEAD.format(name="s") + "vars: {db_password: hunter2x, api_token: abcd1234, host: h}\n"
        "steps:\n  - {name: x, run: [echo, '{{ host }}']}\n",
    )
    assert sorted(load_playbook(book).secrets) == ["abcd1234", "hunter2x"]


def test_top_level_include_adds_checks_and_hosts(tmp_path: Path) -> None:
    """A top-level `include` brings in another playbook's preflight and steady-state probes."""
    write_playbook(
        tmp_path,
        HEAD.format(name="checks") + "preflight:\n  - {name: shared check, run: ['true']}\n"
        "steps:\n  - {name: unused, run: ['true']}\n",
        name="checks.yaml",
    )
    book = write_playbook(
        tmp_path,
        HEAD.format(name="main") + "include: [checks.yaml]\n"
        "preflight:\n  - {name: own check, run: ['true']}\n"
        "steps:\n  - {name: x, run: ['true']}\n",
    )
    loaded = load_playbook(book).playbook
    assert [p.name for p in loaded.preflight] == ["shared check", "own check"]
    assert [s.name for s in loaded.steps] == ["x"]


FULL_EXAMPLE = """\
apiVersion: recoveryd/v1
kind: Drill
name: pg-primary-loss
description: The primary population database host is lost; the standby takes over.
owners: {government: "Provincial big-data bureau, DR duty officer", vendor: "Cloud vendor on-call"}
objectives: {rto: 120s, rpo: 5s}
hosts:
  primary: {address: 127.0.0.1, port: 2222, user: dr, key_file: k, known_hosts: kh}
  standby: {address: 127.0.0.1, port: 2223, user: dr, key_file: k, known_hosts: kh}
vars: {standby_dsn: "host=127.0.0.1 port=5434 dbname=population user=dr"}
preflight:
  - {name: standby is streaming, sql: "select status from pg_stat_wal_receiver",
     on: "{{ standby_dsn }}", expect: streaming}
steady_state:
  - {name: service answers, http: {url: "http://127.0.0.1:8080/healthz"}, expect: {status: 200}}
stop_conditions:
  - {name: host not overloaded, pressure: below critical}
canary: {dsn: "host=127.0.0.1 port=5433 dbname=population user=dr", every: 200ms}
steps:
  - name: stop the primary
    ssh: primary
    run: [sudo, systemctl, stop, postgresql]
    destructive: true
    marks: fault
    rollback: {ssh: primary, run: [sudo, systemctl, start, postgresql]}
  - name: promote the standby
    ssh: standby
    run: [pg_ctl, promote, -D, /var/lib/postgresql/15/main]
    timeout: 30s
  - name: standby accepts writes
    wait:
      sql: "select not pg_is_in_recovery()"
      on: "{{ standby_dsn }}"
      expect: true
    timeout: 60s
    interval: 500ms
    marks: recovered
approvals: {required: 1}
rollback_on: [failure, abort, interrupt]
"""


def test_a_playbook_using_every_part_of_the_document_validates(tmp_path: Path) -> None:
    """A playbook using every part of the document docs/PLAYBOOKS.md describes is valid as
    written."""
    book = write_playbook(tmp_path, FULL_EXAMPLE)
    loaded = load_playbook(book)
    assert loaded.playbook.objectives.rto == 120
    assert loaded.playbook.steps[2].wait is not None
    assert loaded.playbook.steps[2].interval == 0.5
    assert loaded.playbook.preflight[0].on == "host=127.0.0.1 port=5434 dbname=population user=dr"
    assert loaded.hosts["primary"].key_file == str(tmp_path / "k")
    rollback = loaded.playbook.steps[0].rollback
    assert rollback is not None
    assert rollback.name == "undo: stop the primary"

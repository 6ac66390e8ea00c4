"""Malformed playbooks are refused before anything runs, with file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from recoveryd.drills.api import validate_playbook
from recoveryd.errors import ConfigError

HEAD = """\
apiVersion: recoveryd/v1
kind: Drill
name: bad
"""
OK_STEP = "steps:\n  - {name: one, run: [echo, hi]}\n"

# (case id, playbook text, expected line, words the message must contain)
CASES: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("yaml syntax", HEAD + "steps: [\n  - {name: x", 5, ("invalid YAML",)),
    ("not a mapping", "- just\n- a list\n", 1, ("mapping",)),
    ("wrong apiVersion", "apiVersion: v2\nkind: Drill\nname: bad\n" + OK_STEP, 1, ("apiVersion",)),
    ("wrong kind", "apiVersion: recoveryd/v1\nkind: Job\nname: bad\n" + OK_STEP, 2, ("kind",)),
    ("missing name", "apiVersion: recoveryd/v1\nkind: Drill\n" + OK_STEP, 1, ("missing name",)),
    ("no steps", HEAD, 1, ("missing steps",)),
    ("unknown top key", HEAD + "colour: red\n" + OK_STEP, 4, ("colour", "unknown key")),
    ("duplicate key", HEAD + "name: again\n" + OK_STEP, 4, ("duplicate key",)),
    (
        "unknown step kind",
        HEAD + "steps:\n  - name: reboot it\n    reboot: now\n",
        6,
        ("unknown step kind", "reboot"),
    ),
    (
        "two kinds",
        HEAD + "steps:\n  - name: x\n    run: [a]\n    sleep: 1s\n",
        5,
        ("several kinds",),
    ),
    ("no kind", HEAD + "steps:\n  - name: x\n    timeout: 5s\n", 5, ("no kind",)),
    (
        "string command without shell",
        HEAD + "steps:\n  - name: x\n    run: rm -rf /tmp/x\n",
        5,
        ("shell: true",),
    ),
    (
        "string probe command without shell",
        HEAD + "steps:\n  - name: x\n    wait:\n      run: curl -s http://x/$(id)\n",
        6,
        ("shell: true",),
    ),
    (
        "bad duration",
        HEAD + "steps:\n  - name: x\n    run: [a]\n    timeout: soon\n",
        7,
        ("steps[0].timeout", "duration"),
    ),
    (
        "bad objective duration",
        HEAD + "objectives: {rto: 2 minutes}\n" + OK_STEP,
        4,
        ("objectives.rto", "duration"),
    ),
    (
        "undefined variable",
        HEAD + "steps:\n  - name: x\n    run: [echo, '{{ nope }}']\n",
        6,
        ("undefined variable", "nope", "--var"),
    ),
    (
        "dangling host",
        HEAD + "steps:\n  - name: x\n    ssh: db9\n    run: ['true']\n",
        6,
        ("unknown host", "db9"),
    ),
    (
        "fault without recovered",
        HEAD + "steps:\n  - name: x\n    run: [a]\n    marks: fault\n",
        7,
        ("marks: recovered",),
    ),
    (
        "recovered before fault",
        HEAD + "steps:\n  - name: x\n    run: [a]\n    marks: recovered\n",
        7,
        ("after", "fault"),
    ),
    (
        "unknown mark",
        HEAD + "steps:\n  - name: x\n    run: [a]\n    marks: maybe\n",
        7,
        ("marks",),
    ),
    (
        "destructive probe kind",
        HEAD
        + "preflight:\n  - name: x\n    fault: {action: fill_disk, path: /tmp, level: 50}\n"
        + OK_STEP,
        6,
        ("preflight", "read-only"),
    ),
    (
        "fault missing target",
        HEAD + "steps:\n  - name: x\n    fault: {action: kill_process}\n",
        6,
        ("pid_file or process",),
    ),
    (
        "bad regex",
        HEAD + "steps:\n  - name: x\n    run: [a]\n    expect: '~ (unclosed'\n",
        7,
        ("regular expression",),
    ),
    (
        "bad json path",
        HEAD
        + "steps:\n  - name: x\n    http: {url: 'http://127.0.0.1/'}\n"
        + "    expect: {json: {'data.x': 1}}\n",
        7,
        ("JSON path",),
    ),
    (
        "http url scheme",
        HEAD + "steps:\n  - name: x\n    http: {url: 'ftp://x/'}\n",
        6,
        ("steps[0].http.url",),
    ),
    (
        "sql without on",
        HEAD + "steps:\n  - name: x\n    sql: select 1\n",
        5,
        ("on:",),
    ),
    (
        "rpo without canary",
        HEAD + "objectives: {rpo: 5s}\n" + OK_STEP,
        4,
        ("canary",),
    ),
    (
        "canary not postgresql",
        HEAD + "objectives: {rpo: 5s}\ncanary: {dsn: 'mysql://u@h/db'}\n" + OK_STEP,
        5,
        ("canary.dsn", "PostgreSQL"),
    ),
    (
        "retries negative",
        HEAD + "steps:\n  - name: x\n    run: [a]\n    retries: -1\n",
        7,
        ("retries",),
    ),
    (
        "vars not a mapping",
        HEAD + "vars: [a, b]\n" + OK_STEP,
        4,
        ("vars",),
    ),
    (
        "rollback with marks",
        HEAD
        + "steps:\n  - name: x\n    run: [a]\n    rollback: {name: y, run: [b], marks: fault}\n",
        7,
        ("rollback",),
    ),
    (
        "missing include",
        HEAD + "steps:\n  - name: x\n    include: other.yaml\n",
        6,
        ("other.yaml", "not found"),
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_playbook_is_refused_with_file_line_and_reason(
    tmp_path: Path, text: str, line: int, words: tuple[str, ...]
) -> None:
    """Each malformed playbook fails validation with one sentence naming file:line and the fault."""
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        validate_playbook(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    for word in words:
        assert word in message, message


def test_there_are_at_least_twenty_cases() -> None:
    """The acceptance asks for at least twenty malformed playbooks."""
    assert len(CASES) >= 20


def test_include_cycle_is_refused(tmp_path: Path) -> None:
    """Playbooks including each other are refused, naming the cycle."""
    (tmp_path / "a.yaml").write_text(HEAD + "steps:\n  - {name: b, include: b.yaml}\n")
    (tmp_path / "b.yaml").write_text(
        HEAD.replace("bad", "b") + "steps:\n  - {name: a, include: a.yaml}\n"
    )
    with pytest.raises(ConfigError) as info:
        validate_playbook(tmp_path / "a.yaml")
    assert "include cycle" in str(info.value)
    assert "a.yaml -> b.yaml -> a.yaml" in str(info.value)

"""Bad configuration, arguments and credentials: one clear line on stderr, the right exit code,
never a traceback (README.md, exit codes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recoveryd.cli.main import main
from tests.initrepo import init_repositories

CONFIG = """\
state_dir: ./state
encryption:
  key_file: ./master.key
targets:
  local: {kind: filesystem, path: ./store}
  other: {kind: filesystem, path: ./store2}
sources:
  registry:
    kind: sqlite
    path: ./registry.db
    targets: [local]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a valid configuration and no key yet."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECOVERYD_CONFIG", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    (tmp_path / "c.yaml").write_text(CONFIG)
    return tmp_path


def edit(old: str, new: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        (d / "c.yaml").write_text(CONFIG.replace(old, new))

    return apply


def nothing(d: Path) -> None:
    return None


def keyed(d: Path) -> None:
    assert main(["--config", "c.yaml", "key", "generate"]) == 0
    init_repositories("c.yaml")


def bad_key(d: Path) -> None:
    (d / "master.key").write_text("recoveryd-master-key-v1 1234 abcd\n")
    (d / "master.key").chmod(0o600)


def pg_with(password_line: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        (d / "c.yaml").write_text(
            CONFIG
            + "  population:\n    kind: postgresql\n    dsn: host=127.0.0.1 dbname=p user=b\n"
            + f"    {password_line}\n    targets: [local]\n"
        )

    return apply


def s3_with_missing_credentials(d: Path) -> None:
    (d / "c.yaml").write_text(
        CONFIG.replace(
            "  other: {kind: filesystem, path: ./store2}\n",
            "  other: {kind: s3, bucket: b, endpoint_url: 'http://127.0.0.1:9',"
            " credentials_file: ./absent.ini}\n",
        )
    )


CASES = [
    (
        "missing config file",
        nothing,
        ["--config", "absent.yaml", "snapshots"],
        2,
        "absent.yaml: configuration file not found",
    ),
    ("invalid YAML", edit("targets:\n", "targets: [\n"), ["snapshots"], 2, "invalid YAML"),
    (
        "unknown key",
        edit("    path: ./registry.db\n", "    path: ./registry.db\n    pth: x\n"),
        ["snapshots"],
        2,
        "c.yaml:11: sources.registry.pth: unknown key",
    ),
    (
        "unknown target",
        edit("targets: [local]", "targets: [ofsite]"),
        ["backup"],
        2,
        'sources.registry.targets[0]: unknown target "ofsite"',
    ),
    ("unknown command", nothing, ["bakup"], 2, "invalid choice: 'bakup'"),
    ("missing --to", nothing, ["restore", "abc"], 2, "the following arguments are required: --to"),
    ("unknown option", nothing, ["snapshots", "--sauce", "x"], 2, "unrecognized arguments"),
    (
        "bad --read-data",
        nothing,
        ["verify", "--read-data=some"],
        2,
        "ignored explicit argument 'some'",
    ),
    ("--sample alone", keyed, ["verify", "--sample"], 2, "--read-data --sample"),
    ("unknown source", keyed, ["backup", "registri"], 2, 'unknown source "registri"'),
    ("no key file", nothing, ["backup"], 2, "key generate"),
    ("malformed key file", bad_key, ["backup"], 2, "malformed key line"),
    ("key exists", keyed, ["key", "generate"], 2, "already exists"),
    ("unknown target option", keyed, ["snapshots", "--target", "nas"], 2, 'unknown target "nas"'),
    (
        "unknown source option",
        keyed,
        ["snapshots", "--source", "registri"],
        2,
        'unknown source "registri"',
    ),
    ("same copy target", keyed, ["copy", "--from", "local", "--to", "local"], 2, "same target"),
    (
        "missing password file",
        pg_with("password_file: ./nope.pw"),
        ["config", "check"],
        2,
        "sources.population.password_file: secret file ./nope.pw not found",
    ),
    (
        "unset env secret",
        pg_with("password: env:RECOVERYD_TEST_UNSET"),
        ["config", "check"],
        2,
        "environment variable RECOVERYD_TEST_UNSET is not set",
    ),
    (
        "secret written inline",
        pg_with("password: hunter2hunter2"),
        ["config", "check"],
        2,
        "write a reference",
    ),
    (
        "missing S3 credentials file",
        s3_with_missing_credentials,
        ["config", "check"],
        2,
        "targets.other.credentials_file: secret file ./absent.ini not found",
    ),
    (
        "credential without systemd",
        pg_with("password: credential:pg"),
        ["config", "check"],
        2,
        "needs $CREDENTIALS_DIRECTORY",
    ),
]


@pytest.mark.parametrize(
    ("name", "setup", "argv", "code", "text"), CASES, ids=[c[0] for c in CASES]
)
def test_errors_are_one_clear_line(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    setup: Callable[[Path], None],
    argv: list[str],
    code: int,
    text: str,
) -> None:
    """Each mistake an operator can make gives one sentence naming the fix and its exit code."""
    setup(workdir)
    capsys.readouterr()
    full = argv if argv[0] == "--config" else ["--config", "c.yaml", *argv]
    assert main(full) == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("recoveryd: ")
    assert text in lines[0]
    assert "Traceback" not in err
    assert "hunter2" not in err


def test_debug_log_level_adds_the_traceback(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--log-level debug` shows the traceback behind an error, for the engineer on call."""
    assert main(["--config", "c.yaml", "--log-level", "debug", "backup"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_missing_database_is_an_operation_failure(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A source that cannot be read fails the backup (exit 1) naming the source; nothing listed."""
    keyed(workdir)
    capsys.readouterr()
    assert main(["--config", "c.yaml", "backup"]) == 1
    err = capsys.readouterr().err
    assert "registry" in err
    assert "Traceback" not in err
    assert main(["--config", "c.yaml", "--json", "snapshots"]) == 0
    assert capsys.readouterr().out.strip() == "[]"

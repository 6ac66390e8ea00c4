"""Keys and secrets the way systemd hands them over: `credential:NAME` for the key file and
every secret reference, and secret files that every user could read refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recoveryd.cli.main import main

KEY_GENERATE = ["key", "generate"]


def _deploy(tmp_path: Path, key_file: str, source: str = "") -> Path:
    db = tmp_path / "reg.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (x)")
    conf = tmp_path / "recoveryd.yaml"
    conf.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"encryption: {{key_file: '{key_file}'}}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp_path / 'store'}}}}}\n"
        f"sources:\n  reg: {{kind: sqlite, path: {db}, targets: [local]{source}}}\n"
    )
    return conf


def _cli(conf: Path, *args: str) -> int:
    return main(["--config", str(conf), *args])


@pytest.fixture
def creds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A credentials directory as systemd sets it: owner-only files."""
    d = tmp_path / "credentials"
    d.mkdir(mode=0o500)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(d))
    return d


def test_the_key_file_is_read_from_the_credentials_directory(
    tmp_path: Path, creds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`key_file: credential:master.key` reads `$CREDENTIALS_DIRECTORY/master.key`: the
    key generated at the file `LoadCredential=` names opens the repository."""
    conf = _deploy(tmp_path, "credential:master.key")
    original = tmp_path / "etc" / "master.key"
    assert _cli(conf, *KEY_GENERATE, "--out", str(original)) == 0
    (creds / "master.key").write_bytes(original.read_bytes())
    (creds / "master.key").chmod(0o400)
    assert _cli(conf, "init") == 0
    assert _cli(conf, "backup") == 0
    assert _cli(conf, "--json", "snapshots") == 0
    assert '"reg"' in capsys.readouterr().out


def test_a_credential_key_is_not_generated_or_rotated_in_place(
    tmp_path: Path, creds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The credentials directory is systemd's read-only copy: `key generate` without
    `--out` and `key rotate` are refused (exit 2) saying where to do it."""
    conf = _deploy(tmp_path, "credential:master.key")
    assert _cli(conf, *KEY_GENERATE) == 2
    assert "--out /etc/recoveryd/keys/master.key" in capsys.readouterr().err
    assert _cli(conf, "key", "rotate") == 2
    assert "LoadCredential=" in capsys.readouterr().err


def test_a_credential_without_credentials_directory_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside systemd (`$CREDENTIALS_DIRECTORY` unset) a credential reference fails with
    exit 2 naming the setting and the unit line that provides it."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    conf = _deploy(tmp_path, "credential:master.key")
    assert _cli(conf, "backup") == 2
    err = capsys.readouterr().err
    assert "encryption.key_file" in err and "LoadCredential=master.key" in err
    assert "Traceback" not in err


def test_a_missing_credential_file_is_a_clear_error(
    tmp_path: Path, creds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A credential the unit does not load fails with exit 2 naming it and the directory."""
    conf = _deploy(tmp_path, "credential:master.key")
    assert _cli(conf, "backup") == 2
    err = capsys.readouterr().err
    assert "no file master.key in $CREDENTIALS_DIRECTORY" in err and str(creds) in err


@pytest.mark.parametrize(("mode", "code"), [(0o644, 2), (0o604, 2), (0o640, 0), (0o600, 0)])
def test_a_key_file_readable_by_every_user_is_refused(
    tmp_path: Path, mode: int, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A master key readable by others is refused (exit 2) naming the file; group-readable
    (`root:recoveryd 0640`, as documented) is allowed."""
    key = tmp_path / "keys" / "master.key"
    conf = _deploy(tmp_path, str(key))
    assert _cli(conf, *KEY_GENERATE) == 0
    key.chmod(mode)
    assert _cli(conf, "init") == code
    capsys.readouterr()
    assert _cli(conf, "backup") == code
    if code:
        err = capsys.readouterr().err
        assert f"key file {key} is readable by every user" in err
        assert "chmod o-rwx" in err


def test_a_secret_file_readable_by_every_user_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A password file readable by others is refused (exit 2) naming it and the setting;
    the same file at 0640 is read."""
    from recoveryd.errors import ConfigError
    from recoveryd.secrets import resolve_secret

    pw = tmp_path / "db.pw"
    pw.write_text("Wr-pass-3344\n")
    pw.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by every user") as info:
        resolve_secret(str(pw), tmp_path, setting="sources.db.password_file")
    assert str(pw) in info.value.message and "sources.db.password_file" in info.value.message
    assert int(info.value.exit_code) == 2
    pw.chmod(0o640)
    assert resolve_secret(str(pw), tmp_path, setting="sources.db.password_file") == "Wr-pass-3344"

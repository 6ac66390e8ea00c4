"""The configuration file (docs/CONFIGURATION.md): validated completely, errors name file,
line and key path."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from recoveryd.config import FilesystemTarget, PostgresSource, load_config
from recoveryd.errors import ConfigError, ExitCode
from recoveryd.secrets import MASK, Redactor, redact, resolve_secret

GOOD = """\
state_dir: ./state
encryption:
  key_file: ./master.key
  cipher: sm4-gcm
targets:
  primary:
    kind: s3
    bucket: gov-backups
    endpoint_url: https://127.0.0.1:7443
    max_bandwidth: 200MiB/s
    object_lock: {mode: compliance, days: 35}
  local:
    kind: filesystem
    path: ./store
sources:
  population:
    kind: postgresql
    dsn: "host=db1 port=5432 dbname=population user=backup"
    password_file: ./pw
    rpo: 4h
    priority: critical
    targets: [primary, local]
    retention: {keep_last: 6, daily: 14}
  cache:
    kind: sqlite
    path: /var/lib/cache.db
    targets: [local]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "recoveryd.yaml"
    p.write_text(text)
    return p


def test_the_documented_example_loads(tmp_path: Path) -> None:
    """A configuration like README.md's loads into typed settings with units converted."""
    cfg = load_config(write(tmp_path, GOOD))
    src = cfg.config.sources["population"]
    assert isinstance(src, PostgresSource)
    assert src.rpo == 4 * 3600
    assert cfg.config.targets["primary"].max_bandwidth == 200 * 1024 * 1024
    assert isinstance(cfg.config.targets["local"], FilesystemTarget)
    assert cfg.resolve_path("./store") == tmp_path / "store"
    assert cfg.config.encryption.cipher == "sm4-gcm"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "targets: [primary, local]",
            "targets: [primary, ofsite]",
            r'recoveryd\.yaml:22: sources\.population\.targets\[1\]: unknown target "ofsite"',
        ),
        (
            "targets: [primary, local]",
            "targets: [primary, primary]",
            r'recoveryd\.yaml:22: sources\.population\.targets\[1\]: target "primary" is listed '
            r"twice",
        ),
        ("    rpo: 4h", "    rpo: four hours", r":20: sources\.population\.rpo: .*not a duration"),
        ("    priority: critical", "    priority: urgent", r":21: sources\.population\.priority"),
        (
            "    priority: critical",
            "    priority: critical\n    compression: gzip",
            r"recoveryd\.yaml:22: sources\.population\.compression: Input should be 'zstd' or "
            r"'lz4' \(got 'gzip'\)",
        ),
        (
            "    priority: critical",
            "    priority: critical\n    jobs: 0",
            r"sources\.population\.jobs",
        ),
        (
            "    bucket: gov-backups\n",
            "    bucket: gov-backups\n    buckt: x\n",
            r":9: targets\.primary\.buckt: unknown key",
        ),
        ("    kind: sqlite", "    kind: oracle", r"sources\.cache"),
        (
            '    dsn: "host=db1 port=5432 dbname=population user=backup"\n',
            "",
            r"sources\.population: missing dsn",
        ),
        ("  cipher: sm4-gcm", "  cipher: des", r":4: encryption\.cipher"),
        ("state_dir: ./state", "state_dir: ' '", r":1: state_dir: state_dir is empty"),
        (
            "    max_bandwidth: 200MiB/s",
            "    max_bandwidth: fast",
            r"targets\.primary\.max_bandwidth",
        ),
    ],
)
def test_bad_settings_name_line_and_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    """Typos, wrong types, unknown references, missing settings: exit-2 errors naming where."""
    assert old in GOOD
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(write(tmp_path, GOOD.replace(old, new)))
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(info.value)


def test_compression_is_zstd_unless_a_source_says_lz4(tmp_path: Path) -> None:
    """Every source kind takes `compression`: `zstd` when absent, `lz4` when set; the
    schema of `recoveryd config schema` offers exactly those two values."""
    from recoveryd.repo.chunker import Compression
    from recoveryd.schema import config_schema

    cfg = load_config(write(tmp_path, GOOD)).config
    assert {s.compression for s in cfg.sources.values()} == {"zstd"}
    sources = GOOD.replace("    targets: [local]\n", "    targets: [local]\n    compression: lz4\n")
    extra = """\
  tiles:
    kind: directory
    path: /srv/tiles
    compression: lz4
    targets: [local]
  orders:
    kind: mysql
    dsn: "host=db2 dbname=orders user=backup"
    compression: lz4
    targets: [local]
"""
    loaded = load_config(write(tmp_path, sources + extra)).config.sources
    assert {n: s.compression for n, s in loaded.items()} == {
        "population": "zstd",
        "cache": "lz4",
        "tiles": "lz4",
        "orders": "lz4",
    }
    defs = config_schema()["$defs"]
    for kind in ("PostgresSource", "MysqlSource", "SqliteSource", "DirectorySource"):
        prop = defs[kind]["properties"]["compression"]
        assert (prop["enum"], prop["default"]) == (["zstd", "lz4"], "zstd"), kind
    assert set(get_args(Compression)) == {"zstd", "lz4"}  # the chunker knows every value


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    """A missing configuration file is one sentence naming it."""
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.yaml")


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --config, $RECOVERYD_CONFIG names the file."""
    monkeypatch.setenv("RECOVERYD_CONFIG", str(write(tmp_path, GOOD)))
    assert load_config().path == tmp_path / "recoveryd.yaml"


def test_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets come from env:NAME, credential:NAME ($CREDENTIALS_DIRECTORY) or a file."""
    monkeypatch.setenv("PG_PASSWORD_FOR_TEST", "s3cret-env")
    assert resolve_secret("env:PG_PASSWORD_FOR_TEST", tmp_path) == "s3cret-env"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "pg").write_text("s3cret-cred\n")
    (creds / "pg").chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert resolve_secret("credential:pg", tmp_path) == "s3cret-cred"
    (tmp_path / "pw").write_text("s3cret-file\n")
    (tmp_path / "pw").chmod(0o640)
    assert resolve_secret("pw", tmp_path) == "s3cret-file"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            "env:NOT_SET_ANYWHERE_X",
            r"x\.password: environment variable NOT_SET_ANYWHERE_X is not set",
        ),
        ("credential:pg", r"x\.password: credential:pg needs \$CREDENTIALS_DIRECTORY"),
        ("missing.pw", r"x\.password: secret file missing\.pw not found"),
        ("empty.pw", r"x\.password: empty\.pw is empty"),
        ("env:1bad", r"not a valid environment variable"),
    ],
)
def test_unresolvable_secrets_name_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str, expected: str
) -> None:
    """A secret that cannot be read is an exit-2 error naming the setting, never a value."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    (tmp_path / "empty.pw").write_text("\n")
    (tmp_path / "empty.pw").chmod(0o600)
    with pytest.raises(ConfigError, match=expected) as info:
        resolve_secret(ref, tmp_path, setting="x.password")
    assert info.value.exit_code == ExitCode.USAGE


def test_resolved_secrets_are_redacted_everywhere(tmp_path: Path) -> None:
    """Once resolved, a secret value is masked in any text shown to a person."""
    (tmp_path / "pw").write_text("correct-horse-battery\n")
    (tmp_path / "pw").chmod(0o600)
    resolve_secret("pw", tmp_path)
    assert redact("psql failed: correct-horse-battery rejected") == f"psql failed: {MASK} rejected"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host=db1 password=hunter2 user=x", f"host=db1 password={MASK} user=x"),
        ("mysql://backup:pa55@db2:3306/legal", f"mysql://backup:{MASK}@db2:3306/legal"),
        ("PGPASSWORD='a b c' pg_dump", f"PGPASSWORD='{MASK}' pg_dump"),
        ("no secret here", "no secret here"),
    ],
)
def test_dsn_passwords_are_redacted(text: str, expected: str) -> None:
    """Passwords written into DSNs, URIs and environment assignments never show."""
    assert Redactor()(text) == expected


def test_setting_names_in_messages_are_not_masked() -> None:
    """`sources.x.password: ...` in an error names a setting; the sentence stays readable."""
    text = "sources.x.password: environment variable PW is not set"
    assert Redactor()(text) == text
    assert "hunter2" not in Redactor()('{"password": "hunter2"}')

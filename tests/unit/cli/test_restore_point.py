"""`restore SOURCE --time/--lsn`: how the target is read and what destination is refused,
before any store is touched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recoveryd.app.pitr import parse_time
from recoveryd.cli.main import main
from recoveryd.errors import UsageError
from tests.unit.daemon.helpers import write_config

SOURCE = """\
sources:
  registry: {kind: postgresql, dsn: "host=127.0.0.1 dbname=registry", mode: physical,
             targets: [local]}
"""


def test_a_time_without_an_offset_is_in_the_daemon_timezone(tmp_path: Path) -> None:
    """`--time 2026-12-03 10:15:00` means 10:15 in `daemon.timezone` (02:15 UTC for
    Asia/Shanghai); an explicit offset wins over it."""
    cfg = write_config(tmp_path, "daemon: {timezone: Asia/Shanghai}\n" + SOURCE)
    assert parse_time("2026-12-03 10:15:00", cfg) == datetime(2026, 12, 3, 2, 15, tzinfo=UTC)
    assert parse_time("2026-12-03T10:15:00+00:00", cfg) == datetime(2026, 12, 3, 10, 15, tzinfo=UTC)


def test_a_time_that_is_not_iso_8601_names_the_fix(tmp_path: Path) -> None:
    """A time in another format is a usage error showing the format to write."""
    cfg = write_config(tmp_path, SOURCE)
    with pytest.raises(UsageError, match=r'--time "03/12/2026" is not an ISO 8601 time; write'):
        parse_time("03/12/2026", cfg)


def test_a_non_empty_destination_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--to` an existing directory holding files is refused (exit 2) in one sentence
    naming it, without a traceback, and the files there are left alone."""
    write_config(tmp_path, SOURCE)
    dest = tmp_path / "pgdata"
    dest.mkdir()
    (dest / "PG_VERSION").write_text("15\n")
    code = main(
        [
            *("--config", str(tmp_path / "recoveryd.yaml")),
            *("restore", "registry", "--time", "2026-12-03 10:15:00+08:00", "--to", str(dest)),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"--to {dest} exists and is not an empty directory" in err
    assert "Traceback" not in err
    assert (dest / "PG_VERSION").read_text() == "15\n"

"""`make run`: a complete backup-and-restore round trip in one folder, in well under a minute.

    python -m recoveryd.demo --dir demo

Creates a small "population registry" SQLite database and a configuration
with a filesystem store and a freshly generated master key, then runs the
real command line: key generate, init, config check, backup, a day of changes and a
second (deduplicated) backup, snapshots, verify --read-data, restore to a new
file; compares row counts and per-table checksums of the live database and
the restored copy, and prints what it did. Finally writes the demo's report
when the reports package offers one. Exit status: 0 when the restored copy is
identical, else the failing command's.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from recoveryd.cli import output
from recoveryd.cli.main import main as cli_main
from recoveryd.config import load_config
from recoveryd.demo import data as demo_data

MARKER = ".recoveryd-demo"
ROWS = 40000
SOURCE = "population-registry"

CONFIG = f"""\
# recoveryd demo configuration (written by `make run`); see README.md.
state_dir: ./state
encryption:
  key_file: ./keys/master.key
  cipher: aes-256-gcm
targets:
  local:
    kind: filesystem
    path: ./store
sources:
  {SOURCE}:
    kind: sqlite
    path: ./{SOURCE}.db
    classification: confidential
    priority: critical
    rpo: 4h
    targets: [local]
    retention: {{keep_last: 7, daily: 14}}
"""


class DemoError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def prepare(folder: Path) -> None:
    """An empty demo folder: a previous demo's folder is reset, any other folder refused."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            output.error(f"{folder} exists and is not a demo folder; choose another --dir")
            raise DemoError(2)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by python -m recoveryd.demo; safe to delete\n")


def cli(config: Path, *args: str) -> None:
    """Run one recoveryd command in-process, echoing it like a shell session."""
    output.line(f"\n$ recoveryd {' '.join(args)}")
    code = cli_main(["--config", str(config), *args])
    if code != 0:
        output.error(f"the demo stopped: `recoveryd {' '.join(args)}` exited with {code}")
        raise DemoError(code)


def day_of_changes(db_path: Path, rows: int) -> tuple[int, int]:
    """What a registry sees in a day: 1% new citizens, 1% of records updated in one range."""
    added = rows // 100
    updated = rows // 100
    db = sqlite3.connect(db_path)
    try:
        db.executemany(
            "insert into citizen values (?, ?, ?, ?, ?, ?, ?, ?)",
            demo_data.citizens(7, rows + 1, added),
        )
        start = rows // 2
        db.execute(
            "update citizen set address = address || '（已核实）', "
            "remarks = '住址变更，经社区核实。' where id between ? and ?",
            (start, start + updated - 1),
        )
        db.commit()
    finally:
        db.close()
    return added, updated


def latest_snapshot(config: Path) -> str:
    from recoveryd import app

    snaps = app.list_snapshots(load_config(config), source=SOURCE)
    return snaps[-1].id


def compare(original: Path, restored: Path) -> bool:
    """Print row counts and checksums side by side; True when identical."""
    a = demo_data.sqlite_checksums(original)
    b = demo_data.sqlite_checksums(restored)
    output.line("\nComparison of the live database and the restored copy:")
    rows = []
    for table in sorted(set(a) | set(b)):
        ca, ha = a.get(table, (0, "-"))
        cb, hb = b.get(table, (0, "-"))
        rows.append(
            (table, ca, cb, ha[:16], hb[:16], "identical" if (ca, ha) == (cb, hb) else "DIFFERENT")
        )
    output.table(
        ("TABLE", "ROWS", "RESTORED ROWS", "CHECKSUM", "RESTORED CHECKSUM", "RESULT"), rows
    )
    return a == b


def write_report(folder: Path) -> Path | None:
    """The demo's HTML report, when the reports package provides a demo hook."""
    try:
        from recoveryd import reports
    except ImportError:
        return None
    hook = getattr(reports, "render_demo_report", None)
    if hook is None:
        return None
    path: Path = hook(folder)
    return path


def run(folder: Path, rows: int = ROWS) -> int:
    started = time.monotonic()
    prepare(folder)
    config = folder / "recoveryd.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    db = folder / f"{SOURCE}.db"
    output.line(f"recoveryd demo in {folder.resolve()}")
    output.line(f"Generating a population registry of {rows} citizens in {db.name} ...")
    demo_data.create_sqlite(db, rows)
    cli(config, "key", "generate")
    cli(config, "init")
    cli(config, "config", "check")
    cli(config, "backup")
    added, updated = day_of_changes(db, rows)
    output.line(
        f"\nA day of changes: {added} citizens registered, {updated} records updated "
        "in one contiguous range. Second backup (chunks already stored are not stored again):"
    )
    cli(config, "backup")
    cli(config, "snapshots")
    cli(config, "verify", "--read-data")
    snapshot = latest_snapshot(config)
    restored = folder / "restored" / f"{SOURCE}.db"
    restored.parent.mkdir(exist_ok=True)
    cli(config, "restore", snapshot[:12], "--to", str(restored))
    same = compare(db, restored)
    try:
        report = write_report(folder)
    except Exception as exc:  # noqa: BLE001 - the demo's point is the round trip, not the report
        output.warn(f"the demo report was not written: {exc}")
    else:
        if report is not None:
            output.line(f"\nReport: {report}")
    took = time.monotonic() - started
    if not same:
        output.error("the restored copy differs from the live database")
        return 1
    output.line(
        f"\nRound trip complete in {took:.1f}s: the restored copy is identical. "
        f"Everything is in {folder}/ (configuration, key, store, state, restored copy)."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recoveryd.demo", description=__doc__)
    parser.add_argument("--dir", default="demo", help="the demo folder (default: ./demo)")
    parser.add_argument("--rows", type=int, default=ROWS, help="citizens to generate")
    args = parser.parse_args(argv)
    try:
        return run(Path(args.dir), args.rows)
    except DemoError as exc:
        return exc.code

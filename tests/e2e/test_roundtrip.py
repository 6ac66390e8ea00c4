"""Issue 2 acceptance: every source kind round-trips through the CLI to the filesystem store
and to real S3 stores (Ceph RGW over TLS, Swift), one read feeding all of a source's targets."""

from __future__ import annotations

import hashlib
import os
import random
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target
from tests.fixtures.objectstores import TargetSpec


def check_listing(d: Deployment, made: dict[str, Any], kind: str, targets: list[str]) -> None:
    """The snapshot is listed once, merged across its targets, with the fields README.md
    lists for `snapshots`."""
    listed = [s for s in d.snapshots() if s["id"] == made["id"]]
    assert len(listed) == 1
    snap = listed[0]
    assert set(snap) == {
        "id",
        "source",
        "kind",
        "time",
        "size",
        "stored_size",
        "targets",
        "verified",
        "verified_by_target",
    }
    assert snap["kind"] == kind
    assert sorted(snap["targets"]) == sorted(targets)
    assert snap["time"].endswith("Z")
    assert snap["size"] == made["size"] > 0
    assert set(made) == {
        "id",
        "source",
        "targets",
        "missing_targets",
        "size",
        "stored_size",
        "seconds",
    }
    assert made["missing_targets"] == []


def roundtrip(
    d: Deployment, source: str, kind: str, targets: list[str], restore: Callable[[str, str], None]
) -> str:
    """Back up once, list, verify every byte, restore from EACH target and compare."""
    made = d.backup(source)
    assert len(made) == 1
    check_listing(d, made[0], kind, targets)
    sid = made[0]["id"]
    d.cli("verify", "--read-data", sid).expect(0)
    assert {s["id"]: s["verified"] for s in d.snapshots()}[sid] == "ok"
    for target in targets:
        restore(sid, target)
    return sid


@pytest.mark.integration
def test_sqlite_roundtrip_to_filesystem_ceph_tls_and_swift(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """A SQLite database restores byte-identical from the filesystem, Ceph RGW (https, test
    CA) and Swift, all written from one read of the database."""
    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, 5000)
    deployment.configure(
        targets={
            "local": fs_target(tmp_path / "store"),
            "ceph": target_factory("ceph", https=True).yaml(),
            "swift": target_factory("swift").yaml(),
        },
        sources={
            "registry": {"kind": "sqlite", "path": str(db), "targets": ["local", "ceph", "swift"]}
        },
    )

    def restore(sid: str, target: str) -> None:
        dest = tmp_path / f"restored-{target}.db"
        deployment.cli("restore", sid[:10], "--to", str(dest), "--target", target).expect(0)
        assert without_change_counters(dest) == without_change_counters(db)
        assert demo_data.sqlite_checksums(dest) == demo_data.sqlite_checksums(db)

    roundtrip(deployment, "registry", "sqlite", ["local", "ceph", "swift"], restore)


def without_change_counters(db: Path) -> bytes:
    """The database file minus the header fields SQLite bumps on every copy (change counter,
    version-valid-for and library version): every page must be byte-identical."""
    data = bytearray(db.read_bytes())
    data[24:28] = b"\0" * 4
    data[92:100] = b"\0" * 8
    return bytes(data)


def make_tree(root: Path) -> None:
    """Files with various modes, times, sizes (one incompressible), a symlink, nested and
    non-ASCII names, an empty directory."""
    rng = random.Random(7)
    (root / "tiles" / "z12" / "x3401").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "说明.txt").write_text("地理信息瓦片，仅供内部使用。\n", encoding="utf-8")
    for i in range(30):
        p = root / "tiles" / "z12" / "x3401" / f"{i}.png"
        p.write_bytes(rng.randbytes(rng.randrange(10, 40000)))
        os.utime(p, (1_700_000_000 + i, 1_700_000_000 + i))
    big = root / "tiles" / "index.bin"
    big.write_bytes(rng.randbytes(3 * 1024 * 1024))
    script = root / "refresh.sh"
    script.write_text("#!/bin/sh\necho refresh\n")
    script.chmod(0o750)
    secret = root / "private.key"
    secret.write_text("not really a key\n")
    secret.chmod(0o600)
    os.chown(secret, 1234, 4321)
    (root / "latest").symlink_to("tiles/z12")
    os.utime(root / "empty", (1_600_000_000, 1_600_000_000))


def tree_state(root: Path) -> dict[str, tuple[Any, ...]]:
    """Relative path -> (type, mode, owner, group, mtime, content digest or link target)."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                content: str = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                content = ""
            # directory times change as their entries are written; symlink times are not kept
            keep_time = stat.S_ISREG(st.st_mode) or name == "empty"
            mtime = int(st.st_mtime) if keep_time else 0
            out[rel] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                mtime,
                content,
            )
    return out


@pytest.mark.integration
def test_directory_roundtrip_to_filesystem_ceph_and_swift(
    deployment: Deployment, target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """A directory tree restores with the same contents, modes, owners, times and symlinks."""
    src = tmp_path / "tiles-src"
    src.mkdir()
    make_tree(src)
    deployment.configure(
        targets={
            "local": fs_target(tmp_path / "store"),
            "ceph": target_factory("ceph").yaml(),
            "swift": target_factory("swift").yaml(),
        },
        sources={
            "geo-tiles": {
                "kind": "directory",
                "path": str(src),
                "targets": ["local", "ceph", "swift"],
            }
        },
    )
    expected = tree_state(src)

    def restore(sid: str, target: str) -> None:
        dest = tmp_path / f"restored-{target}"
        deployment.cli("restore", sid, "--to", str(dest), "--target", target).expect(0)
        assert tree_state(dest) == expected

    roundtrip(deployment, "geo-tiles", "directory", ["local", "ceph", "swift"], restore)


@pytest.mark.integration
def test_postgresql_roundtrip_to_filesystem_ceph_and_swift(
    deployment: Deployment,
    target_factory: Callable[..., TargetSpec],
    tmp_path: Path,
    pg_server: Any,
) -> None:
    """A PostgreSQL database restores into a new database with every table identical
    (row counts and checksums of sorted rows), from the filesystem store, Ceph RGW and Swift."""
    from tests.fixtures.postgres import populate_registry, table_checksums

    db = pg_server.create_database("e2e_population")
    populate_registry(pg_server.admin_dsn(db), 3000)
    deployment.configure(
        targets={
            "local": fs_target(tmp_path / "store"),
            "ceph": target_factory("ceph").yaml(),
            "swift": target_factory("swift").yaml(),
        },
        sources={
            "population": {
                "kind": "postgresql",
                "dsn": pg_server.dsn(db),
                "password_file": str(pg_server.password_file),
                "classification": "confidential",
                "targets": ["local", "ceph", "swift"],
            }
        },
    )
    expected = table_checksums(pg_server.admin_dsn(db))

    def restore(sid: str, target: str) -> None:
        into = pg_server.create_database(f"e2e_restored_{target}")
        deployment.cli(
            "restore", sid, "--to", pg_server.admin_dsn(into), "--target", target
        ).expect(0)
        assert table_checksums(pg_server.admin_dsn(into)) == expected
        pg_server.drop_database(into)

    roundtrip(deployment, "population", "postgresql", ["local", "ceph", "swift"], restore)


@pytest.mark.integration
def test_mysql_roundtrip_to_filesystem_ceph_and_swift_tls(
    deployment: Deployment,
    target_factory: Callable[..., TargetSpec],
    tmp_path: Path,
    mariadb_server: Any,
) -> None:
    """A MariaDB database restores into a new database with every table identical, from the
    filesystem store, Ceph RGW and Swift over https; the restore's password comes by reference."""
    from tests.fixtures.mariadb import populate_registry_mysql, table_checksums_mysql

    db = mariadb_server.create_database("e2e_legal")
    populate_registry_mysql(mariadb_server, db, 3000)
    deployment.configure(
        targets={
            "local": fs_target(tmp_path / "store"),
            "ceph": target_factory("ceph").yaml(),
            "swift": target_factory("swift", https=True).yaml(),
        },
        sources={
            "legal-entities": {
                "kind": "mysql",
                "dsn": mariadb_server.dsn(db),
                "password_file": str(mariadb_server.password_file),
                "targets": ["local", "ceph", "swift"],
            }
        },
    )
    expected = table_checksums_mysql(mariadb_server, db)
    admin_pw = tmp_path / "admin.pw"
    admin_pw.write_text(mariadb_server.admin_password + "\n")
    admin_pw.chmod(0o600)  # a secret file others can read is refused

    def restore(sid: str, target: str) -> None:
        into = mariadb_server.create_database(f"e2e_restored_{target}")
        deployment.cli(
            "restore",
            sid,
            "--to",
            mariadb_server.admin_dsn(into),
            "--target",
            target,
            "--password-file",
            str(admin_pw),
        ).expect(0)
        assert table_checksums_mysql(mariadb_server, into) == expected
        mariadb_server.drop_database(into)

    roundtrip(deployment, "legal-entities", "mysql", ["local", "ceph", "swift"], restore)


@pytest.mark.integration
@pytest.mark.parametrize("jobs", [1, 3])
def test_postgresql_via_ssh_roundtrip(
    deployment: Deployment, tmp_path: Path, pg_server: Any, sshd_server: Any, jobs: int
) -> None:
    """A source with `via_ssh` dumps on the database host over SSH (host key checked against
    known_hosts) and restores there, through the same commands: as one pg_dump stream
    (`jobs: 1`) and as parts dumped and restored by several processes (`jobs: 3`)."""
    from tests.fixtures.postgres import populate_registry, table_checksums

    db = pg_server.create_database("e2e_remote")
    populate_registry(pg_server.admin_dsn(db), 500)
    host = sshd_server.host("root").model_dump(mode="json")
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={
            "population": {
                "kind": "postgresql",
                "dsn": pg_server.dsn(db),
                "password_file": str(pg_server.password_file),
                "via_ssh": "db1",
                "targets": ["local"],
                "jobs": jobs,
            }
        },
        hosts={"db1": host},
    )
    sid = deployment.backup()[0]["id"]
    into = pg_server.create_database("e2e_remote_restored")
    deployment.cli("restore", sid, "--to", pg_server.admin_dsn(into)).expect(0)
    assert table_checksums(pg_server.admin_dsn(into)) == table_checksums(pg_server.admin_dsn(db))

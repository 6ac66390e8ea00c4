"""PostgreSQL dumped by several processes (parts) and restored in parallel, against a real
PostgreSQL 15 server on loopback and a filesystem repository."""

from __future__ import annotations

import io
from pathlib import Path

import psutil
import psycopg
import pytest

from recoveryd.errors import SourceError
from recoveryd.repo import Repository, SnapshotMeta, generate_master_key, write_snapshot
from recoveryd.sources import pgpostdata
from recoveryd.sources.base import MultiStream, SourceInfo
from recoveryd.sources.local import LocalRunner
from recoveryd.sources.postgresql import PostgresSource
from recoveryd.stores.filesystem import FilesystemStore
from tests.fixtures.postgres import PgServer
from tests.integration.sources.helpers import children_named

pytestmark = pytest.mark.integration

_SCHEMA = """
CREATE TABLE region (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE citizen (
    id bigserial PRIMARY KEY,
    region_id int NOT NULL REFERENCES region (id),
    name text NOT NULL,
    born date NOT NULL,
    note text
);
CREATE INDEX citizen_name ON citizen (name);
CREATE INDEX citizen_born ON citizen (born, region_id);
CREATE TABLE registry_log (at timestamptz NOT NULL, citizen_id bigint, event text);
CREATE TABLE "Odd ""table"" *?.x" (k int PRIMARY KEY, v text);
CREATE SEQUENCE certificate_no START 1000;
SELECT setval('certificate_no', 4242);
INSERT INTO region (name) SELECT 'region ' || g FROM generate_series(1, 40) g;
INSERT INTO citizen (region_id, name, born, note)
    SELECT 1 + g % 40, 'citizen ' || g, date '1950-01-01' + g % 20000,
           repeat(md5(g::text), 1 + g % 5)
    FROM generate_series(1, 60000) g;
INSERT INTO registry_log SELECT now() - g * interval '1 minute', g, 'event ' || g
    FROM generate_series(1, 5000) g;
INSERT INTO "Odd ""table"" *?.x" SELECT g, 'v' || g FROM generate_series(1, 50) g;
ALTER TABLE registry_log ADD CONSTRAINT registry_log_citizen FOREIGN KEY (citizen_id)
    REFERENCES citizen (id);
ALTER TABLE region ADD COLUMN capital bigint REFERENCES citizen (id);
UPDATE region SET capital = id;
ALTER TABLE "Odd ""table"" *?.x" ADD CONSTRAINT "odd;fk" FOREIGN KEY (k)
    REFERENCES region (id) NOT VALID;
CREATE TABLE measurement (region_id int NOT NULL REFERENCES region (id), at date NOT NULL,
    v int, PRIMARY KEY (region_id, at)) PARTITION BY RANGE (at);
CREATE TABLE measurement_2026 PARTITION OF measurement
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO measurement SELECT 1 + g % 40, date '2026-01-01' + g / 40, g
    FROM generate_series(0, 999) g;
ANALYZE;
"""

_CHECKSUMS = """
SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
WHERE schemaname = 'public' ORDER BY 1
"""

_OBJECTS = """
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'sequence ' || sequencename || ' ' || last_value FROM pg_sequences
ORDER BY 1
"""


def _checksums(pg: PgServer, db: str) -> dict[str, tuple[int, str]]:
    """{table: (rows, md5 of its rows as text in row order)} for every table."""
    out = {}
    for (table,) in pg.psql(db, _CHECKSUMS):
        out[table] = pg.psql(
            db, f"SELECT count(*), md5(coalesce(string_agg(t::text, '' ORDER BY t::text), ''))"
            f" FROM {table} t",
        )[0]  # fmt: skip
    return out


@pytest.fixture(scope="module")
def parallel_db(pg_server: PgServer) -> str:
    """Several tables (one much larger, one without a primary key, one with a name full of
    pattern characters, one partitioned), a sequence, indexes and foreign keys: two
    referencing one table, two referencing each other's tables, one NOT VALID (rows break
    it), one declared on the partitioned table."""
    db = pg_server.create_database("src_parallel")
    pg_server.psql(db, _SCHEMA)
    pg_server.psql(db, 'ALTER TABLE "Odd ""table"" *?.x" OWNER TO backup')
    return db


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    master = generate_master_key(tmp_path / "master.key")
    return Repository.init(FilesystemStore(tmp_path / "repo", "local"), master, name="local")


def _source(pg: PgServer, db: str, jobs: int) -> PostgresSource:
    return PostgresSource(
        "population", pg.dsn(db), runner=LocalRunner(), password=pg.password, jobs=jobs
    )


@pytest.mark.parametrize("jobs", [2, 3])
def test_parts_restore_an_identical_database(
    pg_server: PgServer,
    parallel_db: str,
    repo: Repository,
    jobs: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A snapshot dumped as parts (pre-data, `jobs` data parts, post-data) at one exported
    snapshot and restored in parallel gives a database with the same rows in every table
    (per-table checksums), the same indexes, constraints and sequence values, and the
    manifest records the consistency point. Foreign keys end validated as in the source
    (added NOT VALID, then validated in parallel; the one on the partitioned table is added
    directly), the NOT VALID one stays NOT VALID."""
    source = _source(pg_server, parallel_db, jobs)
    reader = source.snapshot()
    assert isinstance(reader, MultiStream)
    (info,) = write_snapshot(reader, [repo], SnapshotMeta(source="population"))
    m = repo.manifest(info.id)
    names = [p.name for p in m.parts]
    assert names == ["pre-data", *(f"data-{k}" for k in range(1, jobs + 1)), "post-data"]
    assert "/" in m.consistency["lsn"] and m.consistency["snapshot_id"]

    read: list[list[pgpostdata.ForeignKey] | None] = []

    def spy(script: str, expected: int) -> list[pgpostdata.ForeignKey] | None:
        read.append(real(script, expected))
        return read[-1]

    real = pgpostdata.read_foreign_keys
    monkeypatch.setattr(pgpostdata, "read_foreign_keys", spy)
    dest = f"restored_parallel_{jobs}"
    pg_server.drop_database(dest)
    source.restore_parts(
        lambda name: repo.restore_stream(info.id, part=name),
        names,
        pg_server.admin_dsn(dest),
        reader.info,
    )
    assert _checksums(pg_server, dest) == _checksums(pg_server, parallel_db)
    assert pg_server.psql(dest, _OBJECTS) == pg_server.psql(parallel_db, _OBJECTS)
    assert len(_checksums(pg_server, dest)) == 6
    (keys,) = read
    assert keys is not None
    assert sorted(k.name for k in keys if k.validate) == [
        "citizen_region_id_fkey", "region_capital_fkey", "registry_log_citizen",
    ]  # fmt: skip
    assert sorted(k.name for k in keys if not k.validate) == [
        '"odd;fk"', "measurement_region_id_fkey",
    ]  # fmt: skip


def test_one_job_is_the_single_stream_format(
    pg_server: PgServer, parallel_db: str, repo: Repository
) -> None:
    """`jobs: 1` keeps today's format: one pg_dump stream, a manifest without parts."""
    (info,) = write_snapshot(
        _source(pg_server, parallel_db, 1).snapshot(), [repo], SnapshotMeta(source="population")
    )
    m = repo.manifest(info.id)
    assert m.parts == () and m.size == sum(c.length for c in m.chunks)


def _dump_of(pattern: str) -> psutil.Process:
    """The one running pg_dump with an argument containing `pattern` (parts whose dump has
    already ended, zombies until the backup reaps them, are skipped)."""
    found = []
    for proc in children_named("pg_dump"):
        try:
            if any(pattern in a for a in proc.cmdline()):
                found.append(proc)
        except psutil.ZombieProcess:
            continue
    (proc,) = found
    return proc


def test_a_killed_dump_worker_fails_the_backup_and_commits_nothing(
    pg_server: PgServer, parallel_db: str, repo: Repository
) -> None:
    """When one pg_dump of a data part is killed, the backup fails with a SourceError naming
    that part and its table, the other dump processes are stopped, and no snapshot is
    listed."""
    reader = _source(pg_server, parallel_db, 3).snapshot()
    assert isinstance(reader, MultiStream)
    # the largest table is alone in its part; with 60 000 rows its dump cannot fit in the
    # pipe, so its process is still running (blocked) until someone reads it
    victim = _dump_of('--table="public"."citizen"')
    victim.kill()
    with pytest.raises(SourceError) as err:
        write_snapshot(reader, [repo], SnapshotMeta(source="population"))
    message = str(err.value)
    assert "pg_dump of part data-" in message and "citizen" in message
    assert "killed by signal 9" in message
    assert repo.snapshot_ids() == []
    assert children_named("pg_dump") == [] and children_named("psql") == []


def test_a_locked_table_fails_the_backup_after_the_lock_wait(
    pg_server: PgServer, parallel_db: str, repo: Repository
) -> None:
    """A table held in ACCESS EXCLUSIVE mode by another session does not hang a dump in
    parts: listing the tables reads the catalog alone, the pg_dumps give up after
    `lock_wait_timeout`, and the backup fails naming the lock, committing nothing."""
    with psycopg.connect(pg_server.admin_dsn(parallel_db)) as holder:
        holder.execute("LOCK TABLE citizen IN ACCESS EXCLUSIVE MODE")
        source = PostgresSource(
            "population", pg_server.dsn(parallel_db), runner=LocalRunner(),
            password=pg_server.password, jobs=2, lock_wait_timeout=1.0,
        )  # fmt: skip
        with pytest.raises(SourceError, match="IN ACCESS SHARE MODE") as err:
            write_snapshot(source.snapshot(), [repo], SnapshotMeta(source="population"))
        holder.rollback()
    assert str(err.value).startswith("source population: pg_dump of part ")
    assert repo.snapshot_ids() == []
    assert children_named("pg_dump") == [] and children_named("psql") == []


class _Truncated:
    """A part's stream cut short after `limit` bytes (as by a broken transfer)."""

    def __init__(self, inner: io.BytesIO, limit: int) -> None:
        self._inner, self._left = inner, limit

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(min(size if size >= 0 else self._left, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._inner.close()


def test_a_failing_restore_worker_fails_clearly(
    pg_server: PgServer, parallel_db: str, repo: Repository
) -> None:
    """When one data part cannot be restored (its stream is cut short), the restore fails
    with a SourceError naming the worker, its part, the table it was loading and the
    database, and no pg_restore is left running; that table gets none of its rows."""
    source = _source(pg_server, parallel_db, 3)
    (info,) = write_snapshot(source.snapshot(), [repo], SnapshotMeta(source="population"))
    m = repo.manifest(info.id)
    data = {p.name: repo.restore_stream(info.id, part=p.name).read() for p in m.parts}
    broken = next(p.name for p in m.parts if p.name.startswith("data-") and p.size > 1_000_000)

    def open_part(name: str) -> _Truncated:
        limit = len(data[name]) // 2 if name == broken else len(data[name])
        return _Truncated(io.BytesIO(data[name]), limit)

    pg_server.drop_database("restored_broken")
    with pytest.raises(SourceError) as err:
        source.restore_parts(
            open_part,
            [p.name for p in m.parts],
            pg_server.admin_dsn("restored_broken"),
            SourceInfo(kind="postgresql", stream_format="pg_dump-custom"),
        )
    message = str(err.value)
    assert f"(part {broken}) could not restore table public.citizen into database" in message
    assert "restored_broken" in message
    assert children_named("pg_restore") == []
    assert pg_server.psql("restored_broken", "SELECT count(*) FROM citizen") == [(0,)]


_PER_TABLE = """
CREATE TABLE a_region (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE pledge (id int PRIMARY KEY, v text NOT NULL
    CHECK (v NOT LIKE 'row-of-%' OR current_database() = 'src_pertable'));
CREATE TABLE z_after (id int PRIMARY KEY);
CREATE TABLE big (id bigint, payload text);
INSERT INTO a_region SELECT g, 'region ' || g FROM generate_series(1, 30) g;
INSERT INTO pledge SELECT g, CASE WHEN g = 7 THEN 'row-of-citizen-7' ELSE 'ok' END
    FROM generate_series(1, 20) g;
INSERT INTO z_after SELECT generate_series(1, 10);
INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 40000) g;
ANALYZE;
"""


def test_each_table_is_restored_in_its_own_transaction(
    pg_server: PgServer, repo: Repository
) -> None:
    """A table whose rows the target rejects (a CHECK that only the source database passes)
    fails the restore with one sentence naming the table, its worker and part and the
    database, quoting no row; the other workers are stopped (no pg_restore left). Every
    table is then either complete or empty, never in part: the table restored before it
    by the same worker keeps all its rows (one transaction per table, not per part), the
    rejected table and the one after it have none."""
    db = pg_server.create_database("src_pertable")
    pg_server.psql(db, _PER_TABLE)
    source = _source(pg_server, db, 2)
    (info,) = write_snapshot(source.snapshot(), [repo], SnapshotMeta(source="population"))
    m = repo.manifest(info.id)
    dest = "restored_pertable"
    pg_server.drop_database(dest)
    with pytest.raises(SourceError) as err:
        source.restore_parts(
            lambda name: repo.restore_stream(info.id, part=name),
            [p.name for p in m.parts],
            pg_server.admin_dsn(dest),
            SourceInfo(kind="postgresql", stream_format="pg_dump-custom"),
        )
    message = str(err.value)
    assert message.startswith(
        "source population: pg_restore worker 1 (part data-1) could not restore table "
        f"public.pledge into database {dest} (exited with status 1): "
    )
    assert 'violates check constraint "pledge_v_check"' in message
    assert "row-of-citizen-7" not in message
    assert message.endswith(f"database {dest} is left partly restored "
                            "(see docs/OPERATIONS.md): drop it and restore again")  # fmt: skip
    assert "\n" not in message
    assert children_named("pg_restore") == []
    others = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    assert pg_server.psql(dest, others) == [(0,)]
    counts = {t: pg_server.psql(dest, f"SELECT count(*) FROM {t}")[0][0]
              for t in ("a_region", "pledge", "z_after", "big")}  # fmt: skip
    assert counts["a_region"] == 30
    assert counts["pledge"] == 0 and counts["z_after"] == 0
    assert counts["big"] in (0, 40000)
    pg_server.drop_database(dest)

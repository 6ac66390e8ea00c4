"""Issue 2 acceptance: deduplication makes a registry's daily change cheap.

A second PostgreSQL snapshot after 1% new rows and 1% of rows updated in one
contiguous id range stores less than 10% of the first snapshot's bytes (the
one size assertion: it is about bytes, not time). What 1% updated at random
costs, and the same day of change on SQLite, are measured and reported
(`record_property`, printed with `-rA`) without a target.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recoveryd.demo import data as demo_data
from tests.e2e.conftest import Deployment, fs_target

PG_ROWS = 400_000
SQLITE_ROWS = 30_000

# A registry generated server-side (fast at this size): names, ID numbers, addresses, dates
# and free text drawn from hashes of the id, so it compresses like real data, not like filler.
PG_SCHEMA = """
create table citizen (
    id bigint primary key,
    national_id text not null,
    family_name text not null,
    given_name text not null,
    sex char(1) not null,
    birth_date date not null,
    registered_at timestamptz not null,
    phone text,
    address text not null,
    notes text,
    version int not null default 1
)
"""
PG_INSERT = """
insert into citizen (id, national_id, family_name, given_name, sex, birth_date, registered_at,
                     phone, address, notes)
select i,
       lpad((abs(hashint8(i)) %% 1000000)::text, 6, '0')
           || to_char(date '1940-01-01' + (abs(hashint8(i * 7)) %% 30000)::int, 'YYYYMMDD')
           || lpad((i %% 10000)::text, 4, '0'),
       (array['王','李','张','刘','陈','杨','黄','赵','吴','周','徐','孙','马','朱','胡','郭'])
           [1 + abs(hashint8(i * 3)) %% 16],
       (array['伟','芳','娜','秀英','敏','静','丽','强','磊','军','洋','勇','艳','杰','娟','涛'])
           [1 + abs(hashint8(i * 5)) %% 16],
       case when hashint8(i * 11) %% 2 = 0 then 'M' else 'F' end,
       date '1940-01-01' + (abs(hashint8(i * 7)) %% 30000)::int,
       timestamptz '2000-01-01' + make_interval(secs => abs(hashint8(i * 13)) %% 700000000),
       '13' || lpad((abs(hashint8(i * 17)) %% 1000000000)::text, 9, '0'),
       (array['北京市东城区','上海市徐汇区','广州市天河区','杭州市西湖区','成都市武侯区'])
           [1 + abs(hashint8(i * 19)) %% 5]
           || (array['人民路','解放路','中山路','建设路','和平路','新华路'])
              [1 + abs(hashint8(i * 23)) %% 6]
           || (abs(hashint8(i * 29)) %% 999)::text || '号'
           || (abs(hashint8(i * 31)) %% 30)::text || '栋'
           || (abs(hashint8(i * 37)) %% 3000)::text || '室',
       case when hashint8(i * 41) %% 3 = 0 then null
            else substr(md5(i::text), 1, 6 + abs(hashint8(i * 43))::int %% 20)
                 || ' 户籍材料已核实，' || (array['迁入','出生登记','居住证','更正姓名'])
                 [1 + abs(hashint8(i * 47)) %% 4] end
from generate_series(%(first)s::bigint, %(last)s::bigint) as i
"""


def pg_registry(dsn: str, first: int, count: int) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        if first == 1:
            conn.execute(PG_SCHEMA)
        conn.execute(PG_INSERT, {"first": first, "last": first + count - 1})  # type: ignore[arg-type]


def pg_update(dsn: str, where: str, params: dict[str, Any]) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(
            "update citizen set version = version + 1, address = address || '（已核实）', "
            "phone = '139' || right(phone, 8) where " + where,  # type: ignore[arg-type]
            params,
        )


@pytest.mark.integration
def test_pg_second_snapshot_after_a_day_of_change_is_small(
    deployment: Deployment,
    tmp_path: Path,
    pg_server: Any,
    record_property: Callable[[str, object], None],
) -> None:
    """1% appended + 1% updated in a contiguous id range: the second snapshot stores < 10%
    of the first; 1% updated at random is measured and reported."""
    db = pg_server.create_database("e2e_dedup")
    admin = pg_server.admin_dsn(db)
    pg_registry(admin, 1, PG_ROWS)
    pg_server.psql(db, "grant select on all tables in schema public to backup")
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={
            "population": {
                "kind": "postgresql",
                "dsn": pg_server.dsn(db),
                "password_file": str(pg_server.password_file),
                "targets": ["local"],
            }
        },
    )
    first = deployment.backup()[0]
    pct = PG_ROWS // 100
    pg_registry(admin, PG_ROWS + 1, pct)
    pg_update(admin, "id between %(a)s and %(b)s", {"a": PG_ROWS // 3, "b": PG_ROWS // 3 + pct - 1})
    second = deployment.backup()[0]
    ids = random.Random(5).sample(range(1, PG_ROWS + 1), pct)
    pg_update(admin, "id = any(%(ids)s)", {"ids": ids})
    third = deployment.backup()[0]
    ratio = second["stored_size"] / first["stored_size"]
    random_ratio = third["stored_size"] / first["stored_size"]
    record_property("pg_first_stored_bytes", first["stored_size"])
    record_property("pg_contiguous_change_stored_ratio", round(ratio, 4))
    record_property("pg_random_1pct_update_stored_ratio", round(random_ratio, 4))
    print(
        f"\nPostgreSQL {PG_ROWS} rows, dump {first['size']} B, first snapshot stored "
        f"{first['stored_size']} B; 1% appended + 1% contiguous updates: {ratio:.1%}; "
        f"1% random updates: {random_ratio:.1%}"
    )
    assert ratio < 0.10


@pytest.mark.integration
def test_sqlite_day_of_change_is_measured(
    deployment: Deployment, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """The same day of change on a SQLite registry: measured and reported, no target."""
    from recoveryd.demo.run import day_of_changes

    db = tmp_path / "registry.db"
    demo_data.create_sqlite(db, SQLITE_ROWS)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["local"]}},
    )
    first = deployment.backup()[0]
    day_of_changes(db, SQLITE_ROWS)
    second = deployment.backup()[0]
    ratio = second["stored_size"] / first["stored_size"]
    record_property("sqlite_day_of_change_stored_ratio", round(ratio, 4))
    print(
        f"\nSQLite {SQLITE_ROWS} rows, file {first['size']} B, "
        f"first stored {first['stored_size']} B; "
        f"1% appended + 1% contiguous updates: {ratio:.1%}"
    )
    assert second["size"] > first["size"]

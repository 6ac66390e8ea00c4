"""A realistic "population registry" generator for benchmarks.

Unlike pgbench's blank filler, rows carry the entropy of real registries:
Chinese names, 18-character resident ID numbers with their GB 11643 check
digit, addresses, dates, phone numbers and free-text notes, so dumps compress
about 3-5x with zstd, as real ones do. Generation runs inside PostgreSQL
(`generate_series` + `setseed`, deterministic for a seed), which is fast enough
for multi-gigabyte databases; `sqlite_registry` builds the same shape in SQLite.

    populate(dsn, rows)            append `rows` citizens (ids continue)
    grow_to(dsn, size_bytes)       append in batches until the database is that big
    append_and_update(dsn, pct)    the "how registries change" workload: pct% new
                                   rows + pct% updated in one contiguous id range
    update_random(dsn, pct)        pct% of citizens updated at random
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import psycopg


def _words(text: str) -> list[str]:
    """Word lists are written space-separated: easier to read than 200 one-word literals."""
    return text.split()


FAMILY = _words(
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 高 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 "
    "彭 曾 肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 任 沈 姚 卢 姜 崔 钟 谭 陆 汪 范 金"
)
GIVEN = _words(
    "伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 桂英 建华 文 华 "
    "红 建国 志强 晓明 海燕 玉兰 子涵 浩然 欣怡 梓轩 雨桐 宇航 思远 嘉怡 俊杰 婷婷 佳琪 博文"
)
PROVINCES = _words(
    "北京 天津 河北 山西 内蒙古 辽宁 吉林 黑龙江 上海 江苏 浙江 安徽 福建 江西 山东 "
    "河南 湖北 湖南 广东 广西 海南 重庆 四川 贵州 云南 陕西 甘肃 青海 宁夏 新疆"
)
CITIES = _words("市辖区 新区 高新区 开发区 县城 老城区 滨海区 江北区 河西区 城关镇")
STREETS = _words(
    "人民路 解放路 中山路 建设路 和平路 文化路 朝阳路 新华路 胜利路 团结路 "
    "光明街 幸福里 学府路 长江路 黄河路"
)
WORDS = _words(
    "户籍 迁入 迁出 核验 通过 补录 更正 姓名 地址 变更 婚姻 登记 出生 申报 身份证 换领 "
    "窗口 办理 材料 齐全 监护人 同意 社区 网格员 走访 确认 居住 证明 已 归档 待 复核"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS citizen (
    id bigint PRIMARY KEY, national_id char(18) NOT NULL, family_name text NOT NULL,
    given_name text NOT NULL, sex char(1) NOT NULL, birth_date date NOT NULL,
    registered_at timestamptz NOT NULL, phone text, notes text,
    version integer NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS address (
    citizen_id bigint PRIMARY KEY, province text NOT NULL, city text NOT NULL,
    street text NOT NULL, house_no integer NOT NULL, postcode char(6) NOT NULL,
    valid_from date NOT NULL);
CREATE TABLE IF NOT EXISTS registry_event (
    id bigserial PRIMARY KEY, citizen_id bigint NOT NULL, kind text NOT NULL,
    happened_at timestamptz NOT NULL, detail text);
CREATE OR REPLACE FUNCTION pick(a text[]) RETURNS text LANGUAGE sql VOLATILE AS
    $$ SELECT a[1 + floor(random() * array_length(a, 1))::int] $$;
CREATE OR REPLACE FUNCTION words(a text[], n int) RETURNS text LANGUAGE sql VOLATILE AS
    $$ SELECT string_agg(a[1 + floor(random() * array_length(a, 1))::int], ' ')
       FROM generate_series(1, n) $$;
CREATE OR REPLACE FUNCTION id_check(body text) RETURNS text LANGUAGE sql IMMUTABLE AS
    $$ SELECT substr('10X98765432', (sum(substr(body, i, 1)::int
         * (ARRAY[7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2])[i]) % 11)::int + 1, 1)
       FROM generate_series(1, 17) i $$;
"""


def _arr(items: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + s + "'" for s in items) + "]"


def populate(dsn: str, rows: int, *, seed: int = 1) -> int:
    """Append `rows` citizens (+ address, ~1 event each); returns the last id."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        first = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM citizen").fetchone()[0])  # type: ignore[index]
        conn.execute(f"SELECT setseed({(seed * 7919 + first) % 1000 / 1000.0})")
        last = first + rows - 1
        conn.execute(
            f"""
            INSERT INTO citizen
            SELECT g, b || id_check(b), pick({_arr(FAMILY)}), pick({_arr(GIVEN)}),
                   CASE WHEN random() < 0.5 THEN 'M' ELSE 'F' END, d,
                   timestamptz '2000-01-01' + random() * interval '9000 days',
                   '1' || (30 + floor(random() * 69))::int || lpad(floor(random() * 1e8)::text, 8, '0'),
                   CASE WHEN random() < 0.8 THEN words({_arr(WORDS)}, 2 + floor(random() * 12)::int) END,
                   1
            FROM (SELECT g, d, lpad((110000 + (g / 1000) % 549999)::text, 6, '0')
                          || to_char(d, 'YYYYMMDD') || lpad((g % 1000)::text, 3, '0') AS b
                  FROM (SELECT g, date '1930-01-01' + floor(random() * 34000)::int AS d
                        FROM generate_series({first}, {last}) g) s) t
            """  # noqa: E501
        )
        conn.execute(
            f"""
            INSERT INTO address
            SELECT g, pick({_arr(PROVINCES)}), pick({_arr(CITIES)}), pick({_arr(STREETS)}),
                   1 + floor(random() * 400)::int, lpad(floor(random() * 1e6)::text, 6, '0'),
                   date '1950-01-01' + floor(random() * 27000)::int
            FROM generate_series({first}, {last}) g
            """
        )
        conn.execute(
            f"""
            INSERT INTO registry_event (citizen_id, kind, happened_at, detail)
            SELECT {first} + floor(random() * {rows})::bigint,
                   pick(ARRAY['birth','move_in','move_out','marriage','id_renewal','correction']),
                   timestamptz '2000-01-01' + random() * interval '9000 days',
                   words({_arr(WORDS)}, 3 + floor(random() * 8)::int)
            FROM generate_series(1, {rows}) g
            """
        )
    return last


def db_size(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]


def grow_to(dsn: str, size_bytes: int, *, batch: int = 500_000, seed: int = 1) -> int:
    """Append citizens in batches until the database is at least `size_bytes`; total rows."""
    while db_size(dsn) < size_bytes:
        populate(dsn, batch, seed=seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        return int(conn.execute("SELECT count(*) FROM citizen").fetchone()[0])  # type: ignore[index]


def append_and_update(dsn: str, pct: float, *, seed: int = 2) -> None:
    """pct% new citizens appended, and pct% updated in one contiguous id range."""
    with psycopg.connect(dsn) as conn:
        n = int(conn.execute("SELECT count(*) FROM citizen").fetchone()[0])  # type: ignore[index]
    count = max(1, int(n * pct / 100))
    populate(dsn, count, seed=seed)
    start = n // 3
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE citizen SET version = version + 1,"
            " notes = coalesce(notes, '') || ' 地址变更已核验',"
            " phone = '139' || lpad((id %% 100000000)::text, 8, '0') WHERE id >= %s AND id < %s",
            (start, start + count),
        )
        conn.execute(
            "UPDATE address SET house_no = house_no + 1 WHERE citizen_id >= %s AND citizen_id < %s",
            (start, start + count),
        )


def update_random(dsn: str, pct: float, *, seed: int = 3) -> None:
    """pct% of citizens, chosen at random, updated."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SELECT setseed({seed / 100})")
        conn.execute(
            "UPDATE citizen SET version = version + 1, notes = coalesce(notes, '') || ' 复核'"
            " WHERE random() < %s",
            (pct / 100,),
        )


def sqlite_registry(path: Path, rows: int, *, seed: int = 1) -> None:
    """A SQLite database of the same shape (citizen + address), `rows` citizens."""
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE citizen (id INTEGER PRIMARY KEY, national_id TEXT, family_name TEXT,"
        " given_name TEXT, birth_date TEXT, phone TEXT, notes TEXT, version INTEGER);"
        "CREATE TABLE address (citizen_id INTEGER PRIMARY KEY, province TEXT, street TEXT,"
        " house_no INTEGER);"
    )
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    batch = []
    for cid in range(1, rows + 1):
        body = (
            f"{110000 + (cid // 1000) % 549999:06d}{rng.randrange(1930, 2020)}0101{cid % 1000:03d}"
        )
        check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
        notes = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 14)))
        batch.append(
            (cid, body + check, rng.choice(FAMILY), rng.choice(GIVEN), body[6:14],
             f"13{rng.randrange(10**9):09d}", notes, 1,
             rng.choice(PROVINCES), rng.choice(STREETS), rng.randrange(1, 400))
        )  # fmt: skip
        if len(batch) == 50_000 or cid == rows:
            con.executemany("INSERT INTO citizen VALUES (?,?,?,?,?,?,?,?)", [b[:8] for b in batch])
            con.executemany("INSERT INTO address VALUES (?,?,?,?)", [(b[0], *b[8:]) for b in batch])
            con.commit()
            batch = []
    con.close()


def sqlite_update(path: Path, pct: float, *, contiguous: bool) -> None:
    """pct% of the SQLite citizens updated, in one id range or at random."""
    con = sqlite3.connect(path)
    n = con.execute("SELECT count(*) FROM citizen").fetchone()[0]
    count = max(1, int(n * pct / 100))
    if contiguous:
        con.execute(
            "UPDATE citizen SET version = version + 1, notes = notes || ' 核验' WHERE id BETWEEN ? AND ?",  # noqa: E501
            (n // 3, n // 3 + count - 1),
        )
    else:
        ids = random.Random(4).sample(range(1, n + 1), count)
        con.executemany(
            "UPDATE citizen SET version = version + 1, notes = notes || ' 核验' WHERE id = ?",
            [(i,) for i in ids],
        )
    con.commit()
    con.close()

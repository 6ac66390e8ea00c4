"""A small, realistic "population registry": the data the demo (and tests) back up.

Not blank filler: Chinese names, 18-digit resident ID numbers with their
check digit, addresses, dates and free-text remarks, so that it compresses
like real registry data (about 3-5x), not 100x. Deterministic for a seed.

`citizens(seed, start, count)` yields rows usable for any SQL database;
`create_sqlite(path, count)` writes the demo database; `sqlite_checksums(path)`
gives per-table row counts and checksums of sorted rows for comparisons.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from datetime import date, timedelta
from pathlib import Path

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰文斌海燕晨曦子涵浩然欣怡梓轩雨桐思远佳怡俊杰嘉怡宇轩一诺"  # noqa: E501
CITIES = [
    ("110101", "北京市", "东城区"),
    ("310104", "上海市", "徐汇区"),
    ("440106", "广东省广州市", "天河区"),
    ("330106", "浙江省杭州市", "西湖区"),
    ("510107", "四川省成都市", "武侯区"),
    ("420106", "湖北省武汉市", "武昌区"),
    ("610113", "陕西省西安市", "雁塔区"),
    ("320106", "江苏省南京市", "鼓楼区"),
]
STREETS = [
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "新华路",
    "文化路",
    "胜利路",
    "友谊路",
    "长江路",
    "黄河路",
    "光明街",
]
REMARKS = [
    "户籍由{city}迁入，材料齐全。",
    "已办理居住证，有效期至{year}年。",
    "因工作调动变更住址，经社区核实。",
    "补录出生登记，附医院出生医学证明。",
    "婚姻状况变更为已婚，民政部门数据同步。",
    "申请更正姓名用字，经派出所审核通过。",
    "Moved from {city} for work; documents verified at the service counter.",
    "",
    "",
]
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

SCHEMA = """
create table citizen (
    id integer primary key,
    id_number text not null,
    name text not null,
    sex text not null check (sex in ('M', 'F')),
    birth_date text not null,
    address text not null,
    registered_on text not null,
    remarks text not null
);
"""


@dataclass(frozen=True)
class Citizen:
    id: int
    id_number: str
    name: str
    sex: str
    birth_date: str
    address: str
    registered_on: str
    remarks: str


def id_number(region: str, birth: date, seq: int, sex: str) -> str:
    """An 18-digit resident identity number (GB 11643) with a valid check digit."""
    order = seq % 1000
    order = order - order % 2 + (1 if sex == "M" else 0)
    body = f"{region}{birth:%Y%m%d}{order:03d}"
    total = sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


def citizen(rng: random.Random, row_id: int) -> Citizen:
    """One plausible registry row, from `rng`."""
    region, city, district = rng.choice(CITIES)
    sex = rng.choice("MF")
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 30000))
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    address = (
        f"{city}{district}{rng.choice(STREETS)}{rng.randrange(1, 999)}号"
        f"{rng.randrange(1, 30)}栋{rng.randrange(1, 3000)}室"
    )
    registered = birth + timedelta(days=rng.randrange(0, 9000))
    remark = rng.choice(REMARKS).format(city=rng.choice(CITIES)[1], year=rng.randrange(2024, 2031))
    return Citizen(
        id=row_id,
        id_number=id_number(region, birth, row_id, sex),
        name=name,
        sex=sex,
        birth_date=birth.isoformat(),
        address=address,
        registered_on=registered.isoformat(),
        remarks=remark,
    )


def citizens(seed: int, start: int, count: int) -> Iterator[tuple[object, ...]]:
    """`count` rows with ids `start`, `start+1`...; the same seed gives the same rows."""
    rng = random.Random(f"{seed}:{start}")  # noqa: S311 - demo data, not security
    for i in range(start, start + count):
        yield astuple(citizen(rng, i))


def create_sqlite(path: Path, count: int = 20000, *, seed: int = 2026) -> None:
    """Write a fresh demo registry with `count` citizens at `path` (replaced if present)."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA)
        db.executemany(
            "insert into citizen values (?, ?, ?, ?, ?, ?, ?, ?)", citizens(seed, 1, count)
        )
        db.commit()
    finally:
        db.close()


def sqlite_checksums(path: Path) -> dict[str, tuple[int, str]]:
    """Per table: (row count, SHA-256 of its rows sorted by every column)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in db.execute(
                "select name from sqlite_master where type='table' and name not like 'sqlite_%' "
                "order by name"
            )
        ]
        out: dict[str, tuple[int, str]] = {}
        for t in tables:
            ncols = len(db.execute(f'select * from "{t}" limit 0').description)
            order = ", ".join(str(i + 1) for i in range(ncols))
            h = hashlib.sha256()
            n = 0
            for row in db.execute(f'select * from "{t}" order by {order}'):
                h.update(repr(row).encode())
                n += 1
            out[t] = (n, h.hexdigest())
        return out
    finally:
        db.close()

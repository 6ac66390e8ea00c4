"""PostgreSQL with several processes: one snapshot dumped as parts, restored in parallel.

Dump. The `psql` coprocess that exported the snapshot (see `postgresql.py`) also
lists, inside that same REPEATABLE READ transaction, every ordinary table with
its size as the catalog has it (`pg_class.relpages` of the heap and its TOAST
table, as of the last VACUUM or ANALYZE): read from the catalog alone, so a
table another session has locked cannot block the listing (a size function
would wait for that lock forever; pg_dump then gives up on it after
`lock_wait_timeout`, as with one stream). The tables are spread over `jobs`
data parts, largest first, each to the part with the fewest bytes so far, so a
large table has a part to itself and small tables are grouped. Then, all at
the exported snapshot (`pg_dump --snapshot=<id>`, custom format, uncompressed):

    pre-data     --section=pre-data          (types, tables, sequences, functions…)
    data-1       --section=data, every table's data but those of the other parts
                 (so sequence values, large objects and any table not listed land here)
    data-2…N     --section=data -t <table>…  (each part's tables, by exact quoted name)
    post-data    --section=post-data         (indexes, constraints, triggers…)

Each process streams into the repository as its own part; nothing is spooled
to local disk. The coprocess keeps the transaction (and so the snapshot) open
until every part has ended.

Restore: see `pgrestore` (the parts) and `pgpostdata` (post-data over workers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from recoveryd.errors import SourceError
from recoveryd.sources.base import (
    CommandRunner,
    Process,
    SnapshotReader,
    SourceInfo,
)
from recoveryd.sources.procstream import ProcessStream, start_tool

PRE_DATA = "pre-data"
POST_DATA = "post-data"
DATA_PREFIX = "data-"
MAX_NAMED_TABLES = 500  # per part past the first: keeps argv short; the rest go to data-1
_HEAD_BLOCK = 64 * 1024
_END = "recoveryd-end-of-tables"
_TABLES_SQL = (
    "SELECT encode(convert_to(format('%I.%I', n.nspname, c.relname), 'UTF8'), 'hex'),"
    " (greatest(c.relpages, 0) + coalesce(greatest(t.relpages, 0), 0))::bigint"
    " * current_setting('block_size')::bigint"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_class t ON t.oid = c.reltoastrelid"
    " WHERE c.relkind = 'r' AND c.relpersistence <> 't'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
    " AND d.objid = c.oid AND d.deptype = 'e')"
    " ORDER BY 2 DESC, 1;\n"
    f"SELECT '{_END}';\n"
)
# post-data entries restored by the parallel workers; the rest follow in one process
_PARALLEL_KINDS = ("INDEX", "CONSTRAINT")


@dataclass(frozen=True)
class Table:
    """A table as `schema.name` (each quoted when needed) and its size in bytes."""

    name: str
    size: int


def plan_parts(tables: Sequence[Table], jobs: int) -> list[list[Table]]:
    """Spread `tables` over at most `jobs` data parts, largest first, each to the part with
    the fewest bytes so far. Part 0 also takes whatever no part names (it is dumped as
    "everything but the other parts' tables"); a part past the first names at most
    `MAX_NAMED_TABLES`. Empty parts are dropped, part 0 excepted."""
    bins: list[list[Table]] = [[] for _ in range(max(1, jobs))]
    load = [0] * len(bins)
    for table in sorted(tables, key=lambda t: (-t.size, t.name)):
        # on a tie part 0 comes last: it also holds everything no part names
        order = sorted(range(len(bins)), key=lambda i: (load[i], i == 0, i))
        i = next((i for i in order if i == 0 or len(bins[i]) < MAX_NAMED_TABLES), 0)
        bins[i].append(table)
        load[i] += max(1, table.size)
    return [bins[0], *(b for b in bins[1:] if b)]


def pattern(name: str) -> str:
    """An exact `pg_dump -t` pattern for `schema.name` as `format('%I.%I')` wrote it:
    both parts double-quoted, so no character in them is a pattern character."""
    schema, table = _split_qualified(name)
    return f'"{schema.replace(chr(34), chr(34) * 2)}"."{table.replace(chr(34), chr(34) * 2)}"'


def _split_qualified(name: str) -> tuple[str, str]:
    """`schema.table` (each part as quote_ident writes it) into the two unquoted names."""
    parts: list[str] = []
    i = 0
    while i <= len(name):
        if i < len(name) and name[i] == '"':
            j, buf = i + 1, []
            while j < len(name):
                if name[j] == '"' and name[j + 1 : j + 2] == '"':
                    buf.append('"')
                    j += 2
                elif name[j] == '"':
                    break
                else:
                    buf.append(name[j])
                    j += 1
            parts.append("".join(buf))
            i = j + 2  # past the closing quote and the dot
        else:
            end = name.find(".", i)
            end = len(name) if end < 0 else end
            parts.append(name[i:end])
            i = end + 1
    if len(parts) != 2:
        raise ValueError(f"not a qualified table name: {name!r}")
    return parts[0], parts[1]


def read_tables(source: str, holder: Process) -> list[Table]:
    """Ask the snapshot's coprocess for every table and its size (inside its transaction)."""
    with contextlib.suppress(OSError):
        holder.write(_TABLES_SQL.encode())
    buf = bytearray()
    marker = f"{_END}\n".encode()
    while not (buf.endswith(b"\n" + marker) or buf == marker):
        block = holder.read(65536)
        if not block:
            raise SourceError(
                f"source {source}: psql ended while listing tables: {holder.stderr_text()}"
            )
        buf += block
    tables = []
    for line in buf.decode().splitlines()[:-1]:
        hex_name, _, size = line.partition("|")
        tables.append(Table(bytes.fromhex(hex_name).decode(), int(size or 0)))
    return tables


@dataclass(frozen=True)
class DumpCommand:
    """How to run pg_dump at the exported snapshot: base argv (tool, format, connection,
    `--snapshot`), environment and the secrets to scrub from its errors."""

    source: str
    runner: CommandRunner
    argv: tuple[str, ...]
    env: dict[str, str]
    secrets: tuple[str | None, ...]
    info: SourceInfo


def part_arguments(plan: list[list[Table]]) -> list[tuple[str, list[str]]]:
    """(part name, pg_dump arguments) of every part, in restore order."""
    named = [[pattern(t.name) for t in tables] for tables in plan[1:]]
    parts = [(PRE_DATA, ["--section=pre-data"])]
    excluded = [f"--exclude-table-data={p}" for names in named for p in names]
    parts.append((f"{DATA_PREFIX}1", ["--section=data", *excluded]))
    for k, names in enumerate(named, start=2):
        parts.append((f"{DATA_PREFIX}{k}", ["--section=data", *(f"--table={p}" for p in names)]))
    parts.append((POST_DATA, ["--section=post-data"]))
    return parts


def _label(name: str, tables: Sequence[Table]) -> str:
    """`pg_dump of part data-2 (public.citizen, …)`, for error messages."""
    shown = ", ".join(t.name for t in tables[:3]) + (", …" if len(tables) > 3 else "")
    return f"pg_dump of part {name}" + (f" ({shown})" if shown else "")


def start_parts(cmd: DumpCommand, plan: list[list[Table]]) -> list[tuple[str, SnapshotReader]]:
    """Start one pg_dump per part; each has written its first bytes (it is connected) when
    this returns. On any failure every started process is killed and the error raised."""
    tables_of = {f"{DATA_PREFIX}{k}": tables for k, tables in enumerate(plan, start=1)}
    started: list[tuple[str, Process]] = []
    out: list[tuple[str, SnapshotReader]] = []
    try:
        for name, args in part_arguments(plan):
            started.append(
                (name, start_tool(cmd.source, cmd.runner, [*cmd.argv, *args], env=cmd.env))
            )
        for name, proc in started:
            head = proc.read(_HEAD_BLOCK)
            out.append(
                (
                    name,
                    ProcessStream(
                        source=cmd.source,
                        tool=_label(name, tables_of.get(name, ())),
                        proc=proc,
                        info=cmd.info,
                        secrets=cmd.secrets,
                        head=head,
                    ),
                )
            )
    except BaseException:
        for _, proc in started:
            proc.kill()
        raise
    return out

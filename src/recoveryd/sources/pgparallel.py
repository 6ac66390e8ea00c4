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

Restore. `pre-data` first (`pg_restore --single-transaction`); then every data
part at once, each through its own `pg_restore --single-transaction` (its
tables are loaded in one transaction: a part that fails leaves none of its
rows); then `post-data`: its table of contents (`pg_restore -l`) is split into
indexes and non-foreign-key constraints, spread over `jobs` `pg_restore -L`
processes (one statement per transaction, so workers never deadlock on each
other's locks), and the rest (foreign keys, triggers, index attachments,
comments…) restored last by one process in archive order. The first worker
that fails stops the others; the SourceError names its part.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from recoveryd.errors import SourceError
from recoveryd.sources.base import (
    ClosableReader,
    CommandRunner,
    Process,
    SnapshotReader,
    SourceInfo,
)
from recoveryd.sources.procstream import ProcessStream, SecretFile, start_tool, tool_failure
from recoveryd.sources.streamio import feed

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


# -- restore -----------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreCommand:
    """How to run pg_restore into the destination database."""

    source: str
    runner: CommandRunner
    argv: tuple[str, ...]  # tool, --dbname, --no-owner, --no-password…
    env: dict[str, str]
    secrets: tuple[str | None, ...]
    database: str
    tmp_dir: Path | None = None


class _Workers:
    """Running restore processes; the first failure kills the others and is the one kept
    (the others then fail only because they were killed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: list[Process] = []
        self.stopped = False
        self.first: BaseException | None = None

    def add(self, proc: Process) -> None:
        with self._lock:
            self._procs.append(proc)
            stopped = self.stopped
        if stopped:
            proc.kill()

    def fail(self, exc: BaseException) -> None:
        """Keep `exc` when it is the first failure, and kill every process."""
        with self._lock:
            if self.first is None:
                self.first = exc
            self.stopped = True
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.kill()


def _restore_one(
    cmd: RestoreCommand,
    workers: _Workers,
    label: str,
    args: Sequence[str],
    open_stream: Callable[[], ClosableReader],
) -> None:
    """Feed one stream through one pg_restore; SourceError naming `label` on failure."""
    if workers.stopped:
        return
    with contextlib.closing(open_stream()) as stream:
        proc = start_tool(cmd.source, cmd.runner, [*cmd.argv, *args], stdin=True, env=cmd.env)
        workers.add(proc)
        status = feed(proc, stream)
    if status != 0:
        raise tool_failure(
            cmd.source,
            f"pg_restore of {label}",
            status,
            proc.stderr_text(),
            cmd.secrets,
            doing=f"could not restore into database {cmd.database}",
        )


def run_parallel(workers: _Workers, jobs: Sequence[Callable[[], None]]) -> None:
    """Run `jobs` at once; the first one that fails kills the others' processes, and its
    error is raised once all have ended."""

    def guarded(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - kept, and raised below
            workers.fail(exc)

    with ThreadPoolExecutor(max(1, len(jobs)), thread_name_prefix="pg-restore") as pool:
        wait([pool.submit(guarded, fn) for fn in jobs])
    if workers.first is not None:
        raise workers.first


def restore_parts(
    cmd: RestoreCommand,
    open_part: Callable[[str], ClosableReader],
    names: Sequence[str],
    jobs: int,
) -> None:
    """Restore pre-data, then every data part at once, then post-data (see module doc)."""
    unknown = [n for n in names if n not in (PRE_DATA, POST_DATA) and not n.startswith("data-")]
    if unknown or PRE_DATA not in names or POST_DATA not in names:
        raise SourceError(
            f"source {cmd.source}: the snapshot's parts {list(names)} are not pre-data, "
            "data-N and post-data; upgrade recoveryd"
        )
    workers = _Workers()
    single = ("--single-transaction",)
    _restore_one(cmd, workers, f"part {PRE_DATA}", single, functools.partial(open_part, PRE_DATA))
    data = [n for n in names if n.startswith(DATA_PREFIX)]
    run_parallel(
        workers,
        [
            functools.partial(
                _restore_one, cmd, workers, f"part {n}", single, functools.partial(open_part, n)
            )
            for n in data
        ],
    )
    _restore_post_data(cmd, workers, functools.partial(open_part, POST_DATA), jobs)


def split_toc(listing: str, jobs: int) -> tuple[list[list[str]], list[str]]:
    """Split a `pg_restore -l` listing: indexes and non-FK constraints dealt round-robin over
    `jobs` lists (kept in archive order), and every other entry in one list, in order."""
    parallel: list[list[str]] = [[] for _ in range(max(1, jobs))]
    rest: list[str] = []
    n = 0
    for line in listing.splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        head = line.split(";", 1)[1].split() if ";" in line else []
        kind = head[2] if len(head) > 2 else ""
        if kind in _PARALLEL_KINDS:
            parallel[n % len(parallel)].append(line)
            n += 1
        else:
            rest.append(line)
    return [p for p in parallel if p], rest


def _list_toc(cmd: RestoreCommand, open_stream: Callable[[], ClosableReader]) -> str:
    """The table of contents of one custom-format stream (`pg_restore -l`)."""
    proc = start_tool(cmd.source, cmd.runner, [cmd.argv[0], "--list"], stdin=True, env=cmd.env)
    out = bytearray()

    def reader() -> None:
        while block := proc.read(65536):
            out.extend(block)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    with contextlib.closing(open_stream()) as stream:
        try:
            while data := stream.read(1024 * 1024):
                try:
                    proc.write(data)
                except OSError:
                    break
        finally:
            proc.close_stdin()
    t.join()
    status = proc.wait()
    if status != 0:
        raise tool_failure(
            cmd.source, f"pg_restore --list of part {POST_DATA}", status, proc.stderr_text()
        )
    return out.decode(errors="replace")


def _restore_post_data(
    cmd: RestoreCommand,
    workers: _Workers,
    open_stream: Callable[[], ClosableReader],
    jobs: int,
) -> None:
    parallel, rest = split_toc(_list_toc(cmd, open_stream), jobs)
    files: list[SecretFile] = []
    try:
        for entries in [*parallel, rest]:
            text = "\n".join(entries) + "\n"
            files.append(SecretFile(cmd.runner, text, suffix=".list", tmp_dir=cmd.tmp_dir))
        run_parallel(
            workers,
            [
                functools.partial(
                    _restore_one,
                    cmd,
                    workers,
                    f"part {POST_DATA} (worker {k})",
                    ("--use-list", f.path),
                    open_stream,
                )
                for k, f in enumerate(files[:-1], start=1)
            ],
        )
        _restore_one(cmd, workers, f"part {POST_DATA}", ("--use-list", files[-1].path), open_stream)
    finally:
        for f in files:
            f.remove()

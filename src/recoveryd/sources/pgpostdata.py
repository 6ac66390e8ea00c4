"""PostgreSQL post-data (indexes, constraints, foreign keys…) restored by several workers.

`pg_restore -j` would schedule this itself, but it needs a seekable archive file
("parallel restore from standard input is not supported"), and a part arrives as
a stream. The post-data part is small (definitions only), so each worker reads
it again: its table of contents (`pg_restore -l`) is split, and each worker is a
`pg_restore -L <its list>` (or a `psql` fed statements) with one statement per
transaction, in four steps:

1. indexes and non-foreign-key constraints (primary keys, unique, checks added
   after the data) dealt round-robin over `jobs` workers: each takes a lock on
   one table only, so workers wait for each other at worst, never deadlock;
2. index attachments (`INDEX ATTACH`: a partitioned table's unique index is
   valid only once every partition's is attached, and a foreign key needs it),
   in archive order, one process;
3. foreign keys, added `NOT VALID` by one process (no scan: each takes a
   moment), then everything else (triggers, rules, policies, comments,
   publications, materialized view data…) in archive order, one process;
4. `VALIDATE CONSTRAINT` of those foreign keys over `jobs` workers, the keys of
   one referencing table in the same worker.

Why foreign keys take this detour: adding a validated foreign key scans the
referencing table while holding SHARE ROW EXCLUSIVE locks on it *and on the
referenced table*, a mode that conflicts with itself. Foreign keys added
directly in parallel would run one at a time whenever they reference the same
table (the usual schema: many tables referencing a few), and two workers
adding keys in opposite directions (a → b, b → a) would deadlock. `VALIDATE
CONSTRAINT` does the scan holding SHARE UPDATE EXCLUSIVE on the referencing
table and only ROW SHARE on the referenced one, which conflict with nothing
the other validations take; keys of one referencing table share one worker,
so no validation waits for another. The result is the same catalog as a
direct add (the key is validated). What stays as it was:

- a key that is `NOT VALID` in the source stays so (added as dumped);
- a key declared on a partitioned table (`ALTER TABLE` without `ONLY`) is added
  directly, validated in step 3: PostgreSQL before 18 refuses `NOT VALID` there;
- when the foreign keys' definitions cannot be read back as expected, or would
  take more than `SCRIPT_LIMIT` bytes of memory, they are restored by
  `pg_restore` in step 3, one after the other, as before.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from recoveryd.sources.base import ClosableReader
from recoveryd.sources.pgparallel import POST_DATA
from recoveryd.sources.pgworkers import (
    RestoreCommand,
    Workers,
    pg_restore_entry,
    run_parallel,
    run_worker,
)
from recoveryd.sources.procstream import SecretFile, start_tool, tool_failure

SCRIPT_LIMIT = 64 * 1024 * 1024
_PARALLEL_KINDS = ("INDEX", "CONSTRAINT")  # step 1
_ATTACH_KIND = "INDEX ATTACH"  # step 2
_FK_KIND = "FK CONSTRAINT"  # step 3, then 4
_IDENT = r'(?:"(?:[^"]|"")*"|[^\s".(]+)'  # as quote_ident writes it
_FK_STATEMENT = re.compile(
    rf"^ALTER TABLE (?P<only>ONLY )?(?P<table>{_IDENT}\.{_IDENT})\n"
    rf"    ADD CONSTRAINT (?P<name>{_IDENT}) FOREIGN KEY [^\n]*;$",
    re.M,
)
_HEADER = (
    "SET statement_timeout = 0;\n"
    "SET lock_timeout = 0;\n"
    "SET client_min_messages = warning;\n"
    "SELECT pg_catalog.set_config('search_path', '', false);\n"
)
_PSQL_ERROR_LINE = re.compile(r"^psql:[^\n]*?:(\d+): (?:ERROR|FATAL)", re.M)


@dataclass(frozen=True)
class Toc:
    """A post-data table of contents split into the steps above (listing lines)."""

    parallel: list[list[str]]  # step 1, per worker
    attach: list[str]  # step 2
    foreign_keys: list[str]  # step 3 (added), 4 (validated)
    later: list[str]  # step 3: every other entry, foreign keys included, in archive order

    @property
    def rest(self) -> list[str]:
        """`later` without the foreign keys."""
        keys = set(self.foreign_keys)
        return [line for line in self.later if line not in keys]


def _kind(line: str) -> str:
    """`INDEX`, `FK CONSTRAINT`… of a `pg_restore -l` line (after id, class oid, oid)."""
    head = line.split(";", 1)[1].split() if ";" in line else []
    if head[2:4] in (["FK", "CONSTRAINT"], ["INDEX", "ATTACH"]):
        return " ".join(head[2:4])
    return head[2] if len(head) > 2 else ""


def split_toc(listing: str, jobs: int) -> Toc:
    """Split a `pg_restore -l` listing into the steps of the module doc; indexes and non-FK
    constraints dealt round-robin over `jobs` lists, every list in archive order."""
    parallel: list[list[str]] = [[] for _ in range(max(1, jobs))]
    toc = Toc(parallel, [], [], [])
    n = 0
    for line in listing.splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        kind = _kind(line)
        if kind in _PARALLEL_KINDS:
            parallel[n % len(parallel)].append(line)
            n += 1
        elif kind == _ATTACH_KIND:
            toc.attach.append(line)
        else:
            toc.later.append(line)
            if kind == _FK_KIND:
                toc.foreign_keys.append(line)
    toc.parallel[:] = [p for p in parallel if p]
    return toc


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key as pg_dump wrote it: its table and name (quoted as in SQL), and the
    statement that adds it."""

    table: str
    name: str
    statement: str
    validate: bool  # added NOT VALID here, to be validated by a worker


def read_foreign_keys(script: str, expected: int) -> list[ForeignKey] | None:
    """The foreign keys of a `pg_restore -f -` script of FK entries only, each rewritten to
    be added NOT VALID unless dumped so or declared on a partitioned table; None unless
    exactly `expected` statements were found (then they are restored as dumped)."""
    keys = []
    for m in _FK_STATEMENT.finditer(script):
        stmt = m.group(0)
        already = stmt.endswith(" NOT VALID;")
        if m["only"] and not already:
            stmt = stmt[:-1] + " NOT VALID;"
        keys.append(ForeignKey(m["table"], m["name"], stmt, bool(m["only"]) and not already))
    return keys if len(keys) == expected else None


def validation_groups(keys: Sequence[ForeignKey], jobs: int) -> list[list[ForeignKey]]:
    """The keys to validate, those of one table together, tables dealt over at most `jobs`
    workers (the tables with the most keys first, each to the worker with the fewest)."""
    by_table: dict[str, list[ForeignKey]] = {}
    for key in keys:
        if key.validate:
            by_table.setdefault(key.table, []).append(key)
    groups: list[list[ForeignKey]] = [[] for _ in range(max(1, jobs))]
    for table_keys in sorted(by_table.values(), key=len, reverse=True):
        min(groups, key=len).extend(table_keys)
    return [g for g in groups if g]


def psql_script(statements: Sequence[str]) -> tuple[bytes, list[int]]:
    """A psql script of `statements` after the session header, and each one's last line."""
    text, ends = _HEADER, []
    for stmt in statements:
        text += stmt + "\n"
        ends.append(text.count("\n"))
    return text.encode(), ends


def psql_entry(names: Sequence[str], ends: Sequence[int]) -> Callable[[str, int], str | None]:
    """Which statement psql stopped on (its `psql:<stdin>:LINE: ERROR` line), by name."""

    def entry(stderr: str, status: int) -> str | None:
        found = _PSQL_ERROR_LINE.search(stderr)
        if found is None:
            return None
        line = int(found.group(1))
        return next((n for n, end in zip(names, ends, strict=True) if line <= end), None)

    return entry


def capture(
    cmd: RestoreCommand,
    args: Sequence[str],
    open_stream: Callable[[], ClosableReader],
    *,
    limit: int | None = None,
    what: str,
) -> bytes | None:
    """What `pg_restore ARGS` prints on stdout reading one stream (a listing, a script);
    None when it prints more than `limit` bytes."""
    proc = start_tool(cmd.source, cmd.runner, [cmd.pg_restore, *args, "--file=-"], stdin=True,
                      env=cmd.env)  # fmt: skip
    out = bytearray()
    over = threading.Event()

    def reader() -> None:
        while block := proc.read(65536):
            if limit is not None and len(out) + len(block) > limit:
                over.set()
                proc.kill()
                return
            out.extend(block)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    with contextlib.closing(open_stream()) as stream:
        try:
            while (data := stream.read(1024 * 1024)) and not over.is_set():
                try:
                    proc.write(data)
                except OSError:
                    break
        finally:
            proc.close_stdin()
    t.join()
    status = proc.wait()
    if over.is_set():
        return None
    if status != 0:
        raise tool_failure(cmd.source, f"pg_restore {what} of part {POST_DATA}", status,
                           proc.stderr_text(), cmd.secrets)  # fmt: skip
    return bytes(out)


class _Lists:
    """Listing files for `pg_restore -L`, removed at the end."""

    def __init__(self, cmd: RestoreCommand) -> None:
        self._cmd = cmd
        self._files: list[SecretFile] = []

    def __call__(self, entries: Sequence[str]) -> str:
        text = "\n".join(entries) + "\n"
        f = SecretFile(self._cmd.runner, text, suffix=".list", tmp_dir=self._cmd.tmp_dir)
        self._files.append(f)
        return f.path

    def remove(self) -> None:
        for f in self._files:
            f.remove()


def restore_post_data(
    cmd: RestoreCommand,
    workers: Workers,
    open_stream: Callable[[], ClosableReader],
    jobs: int,
) -> None:
    """The four steps of the module doc; the first worker that fails stops the others."""
    listing = capture(cmd, ["--list"], open_stream, what="--list")
    toc = split_toc((listing or b"").decode(errors="replace"), jobs)
    lists = _Lists(cmd)
    label = f"pg_restore (part {POST_DATA})"

    def pg_restore(name: str, entries: Sequence[str]) -> Callable[[], None]:
        argv = cmd.restore_argv("--verbose", "--use-list", lists(entries))
        return functools.partial(run_worker, workers, name, argv, open_stream,
                                 name_entry=pg_restore_entry)  # fmt: skip

    try:
        run_parallel(workers, [
            pg_restore(f"pg_restore worker {k} (part {POST_DATA})", entries)
            for k, entries in enumerate(toc.parallel, start=1)
        ])  # fmt: skip
        if toc.attach:
            pg_restore(label, toc.attach)()
        keys = _foreign_keys(cmd, toc, lists, open_stream)
        if keys is None:  # as dumped, among the rest
            pg_restore(label, toc.later)()
            return
        if keys:
            _run_psql(workers, f"psql (part {POST_DATA})", keys, "", validate=False)
        if toc.rest:
            pg_restore(label, toc.rest)()
        run_parallel(workers, [
            functools.partial(_run_psql, workers, f"psql worker {k} (part {POST_DATA})", group,
                              " (validating it)", validate=True)
            for k, group in enumerate(validation_groups(keys, jobs), start=1)
        ])  # fmt: skip
    finally:
        lists.remove()


def _foreign_keys(
    cmd: RestoreCommand, toc: Toc, lists: _Lists, open_stream: Callable[[], ClosableReader]
) -> list[ForeignKey] | None:
    """The foreign keys to add (see `read_foreign_keys`); None: restore them as dumped."""
    if not toc.foreign_keys:
        return []
    script = capture(cmd, ["--no-owner", "--use-list", lists(toc.foreign_keys)], open_stream,
                     limit=SCRIPT_LIMIT, what="--file")  # fmt: skip
    if script is None:
        return None
    return read_foreign_keys(script.decode(errors="replace"), len(toc.foreign_keys))


def _run_psql(
    workers: Workers, label: str, keys: Sequence[ForeignKey], what: str, *, validate: bool
) -> None:
    """Add (or validate) `keys`, one statement per transaction, through one psql."""
    statements = [
        f"ALTER TABLE ONLY {k.table} VALIDATE CONSTRAINT {k.name};" if validate else k.statement
        for k in keys
    ]
    script, ends = psql_script(statements)
    names = [f"foreign key {k.name} on {k.table}{what}" for k in keys]
    run_worker(workers, label, workers.cmd.psql_argv(), lambda: io.BytesIO(script),
               name_entry=psql_entry(names, ends))  # fmt: skip

"""Restoring a PostgreSQL snapshot made of parts (see `pgparallel` for how it is dumped).

1. `pre-data` (types, tables, sequences, functions…) by one `pg_restore
   --single-transaction`: all of it or nothing.
2. Every data part at once, each through its own `pg_restore` (a worker), in
   **one transaction per table**: pg_restore sends each table's rows as one
   `COPY` statement, which PostgreSQL commits as a whole or not at all, on its
   own (no `--single-transaction`: a part's tables do not wait for each other).
   A table that fails (a row rejected by a constraint, a session ended by the
   server, a stream cut short) gets none of its rows; its worker stops at it
   (`--exit-on-error`), the other workers are stopped at once (`pgworkers`).
3. `post-data` over `jobs` workers (see `pgpostdata`).

A failure raises one SourceError naming the worker, its part, the table (or
object) it was restoring and the database, and saying what is left. After a
failure in step 2 the database holds the whole schema without indexes or
constraints, every table whose COPY had committed with all its rows, and every
other table empty, never a table in part; after one in step 3 all the data,
and some of the indexes and constraints. Either way: drop it and restore again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from recoveryd.errors import SourceError
from recoveryd.sources.base import ClosableReader
from recoveryd.sources.pgparallel import DATA_PREFIX, POST_DATA, PRE_DATA
from recoveryd.sources.pgpostdata import restore_post_data
from recoveryd.sources.pgworkers import (
    RestoreCommand,
    Workers,
    fail_clearly,
    pg_restore_entry,
    run_parallel,
    run_worker,
)


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
    workers = Workers(cmd)
    run_worker(
        workers,
        f"pg_restore (part {PRE_DATA})",
        cmd.restore_argv("--verbose", "--single-transaction"),
        functools.partial(open_part, PRE_DATA),
        name_entry=pg_restore_entry,
    )
    data = [n for n in names if n.startswith(DATA_PREFIX)]
    try:
        run_parallel(
            workers,
            [
                functools.partial(
                    run_worker,
                    workers,
                    f"pg_restore worker {k} (part {name})",
                    cmd.restore_argv("--verbose"),
                    functools.partial(open_part, name),
                    name_entry=pg_restore_entry,
                )
                for k, name in enumerate(data, start=1)
            ],
        )
        restore_post_data(cmd, workers, functools.partial(open_part, POST_DATA), jobs)
    except SourceError as exc:
        raise fail_clearly(exc, cmd.database) from exc

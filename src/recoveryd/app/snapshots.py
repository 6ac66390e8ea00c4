"""Operations on stored snapshots: list, restore, verify, copy.

The store is the source of truth: every operation here needs only the
configuration's targets and the master key. The state store only adds what
the store cannot know (the result of the last verify), and loses nothing
that matters when it is deleted.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from recoveryd.app import wiring
from recoveryd.config import (
    DirectorySource,
    LoadedConfig,
    MysqlSource,
    PostgresSource,
    SqliteSource,
)
from recoveryd.errors import (
    IntegrityError,
    KeyFileError,
    RecoverydError,
    SnapshotNotFoundError,
    UsageError,
)
from recoveryd.flow import Progress, ProgressCallback, Tally
from recoveryd.model import SnapshotInfo, VerifiedState
from recoveryd.sources.base import PartedSource

if TYPE_CHECKING:
    from recoveryd.repo.manifest import Manifest
    from recoveryd.repo.repository import Repository
    from recoveryd.repo.restore import RestoreReader
    from recoveryd.sources.base import Source, SourceInfo


@contextlib.contextmanager
def existing_repositories(
    cfg: LoadedConfig, target: str | None = None
) -> Iterator[list[Repository]]:
    """Open the repositories of every target (or just `target`); closed after.

    A target that holds no repository raises RepositoryMissingError (exit 2) naming
    it and `recoveryd init`: an empty listing would hide a typo in its path.
    """
    repos: list[Repository] = []
    try:
        for name in wiring.target_names(cfg, target):
            repos.append(wiring.open_repository(cfg, name))
        yield repos
    finally:
        for r in repos:
            with contextlib.suppress(Exception):
                r.store.close()


def list_snapshots(
    cfg: LoadedConfig,
    *,
    source: str | None = None,
    target: str | None = None,
    on_error: Callable[[str, RecoverydError], None] | None = None,
    on_damaged: Callable[[IntegrityError], None] | None = None,
) -> list[SnapshotInfo]:
    """Snapshots of every target merged by id (oldest first), with their verified state.

    Without `on_error`, a target that cannot be listed (unreachable, damaged)
    raises. With it, that target is reported to `on_error(target, error)` and
    the others are listed: in an incident, the copies that remain matter.
    Likewise with `on_damaged`, a manifest that cannot be read is reported there
    (the error names snapshot, object and target) and every other snapshot listed.
    """
    from recoveryd.errors import StoreError

    merged: dict[str, SnapshotInfo] = {}
    names = wiring.target_names(cfg, target)
    for name in names:
        try:
            with existing_repositories(cfg, name) as repos:
                infos = [
                    info
                    for repo in repos
                    for info in repo.snapshots(source, on_damaged=_in_target(repo, on_damaged))
                ]
        except (StoreError, IntegrityError) as exc:
            if on_error is None or target is not None:
                raise
            on_error(name, exc)
            continue
        for info in infos:
            seen = merged.get(info.id)
            merged[info.id] = (
                info if seen is None else replace(seen, targets=seen.targets + info.targets)
            )
    from recoveryd.app.verification import summary, verified_states

    states: dict[tuple[str, str], VerifiedState] = {}
    st = wiring.existing_state(cfg)  # listing creates no state dir
    if st is not None:
        try:
            states = verified_states(st)
        finally:
            st.close()
    out = []
    for s in merged.values():
        copies = tuple((t, states.get((s.id, t))) for t in s.targets)
        out.append(replace(s, copies=copies, verified=summary([v for _, v in copies])))
    return sorted(out, key=lambda s: (s.time, s.id))


def _in_target(
    repo: Repository, on_damaged: Callable[[IntegrityError], None] | None
) -> Callable[[IntegrityError], None] | None:
    """`on_damaged` with the target's name added to the error's message."""
    if on_damaged is None:
        return None

    def report(exc: IntegrityError) -> None:
        on_damaged(
            IntegrityError(f"target {repo.name}: {exc.message}", snapshot=exc.snapshot, obj=exc.obj)
        )

    return report


def locate(
    cfg: LoadedConfig, repos: Sequence[Repository], snapshot_id: str
) -> tuple[Repository, str]:
    """The first repository holding `snapshot_id` (id or unique prefix), and the full id."""
    for repo in repos:
        try:
            return repo, repo.resolve(snapshot_id)
        except SnapshotNotFoundError:
            continue
    where = ", ".join(r.name for r in repos) or "no target with a repository"
    raise UsageError(
        f"snapshot {snapshot_id}: not found in {where}; list them with `recoveryd snapshots`"
    )


class _CountingReader:
    """Counts bytes read and reports progress; passes everything else through. Readers of
    the parts of one snapshot share one `state` (and its lock)."""

    def __init__(
        self,
        inner: RestoreReader,
        progress: ProgressCallback | None,
        total: int,
        state: tuple[Progress, threading.Lock] | None = None,
    ) -> None:
        self._inner = inner
        self._progress = progress
        self._state, self._lock = state or (Progress(total=total), threading.Lock())

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._count(len(data))
        return data

    def read_view(self, size: int = -1, /) -> memoryview:
        view = self._inner.read_view(size)
        self._count(len(view))
        return view

    def _count(self, n: int) -> None:
        if self._progress is not None:
            with self._lock:
                self._state.read_bytes += n
                self._progress(self._state)

    def close(self) -> None:
        self._inner.close()


def _restore_parts(
    source: Source,
    repo: Repository,
    sid: str,
    m: Manifest,
    dest: str,
    info: SourceInfo,
    progress: ProgressCallback | None,
    password: str | None,
) -> None:
    """Restore a snapshot made of parts through a source that can (each part read from
    `repo` as often as the source asks)."""
    if not isinstance(source, PartedSource):
        raise UsageError(f"snapshot {m.id}: made of parts, which a {m.kind} source cannot restore")
    state = (Progress(total=m.size), threading.Lock())
    opened: set[str] = set()  # a part read again (post-data, per worker) is counted once
    # the data parts are read at once: their read-ahead together stays that of one stream
    readahead = max(2, 8 // max(1, sum(p.name.startswith("data-") for p in m.parts)))

    def open_part(name: str) -> _CountingReader:
        with state[1]:
            first = name not in opened
            opened.add(name)
        reader = repo.restore_stream(sid, part=name, readahead=readahead)
        return _CountingReader(reader, progress if first else None, m.size, state)

    names = [p.name for p in m.parts]
    source.restore_parts(open_part, names, dest, info, password=password)


@contextlib.contextmanager
def restore_session(cfg: LoadedConfig, m: Manifest, dest: str, target: str) -> Iterator[Source]:
    """The Source that can restore this snapshot: the configured one (its tools run where
    the source's do, via_ssh included), else one built from the manifest's kind alone (the
    source may have been removed from the file), running locally."""
    if m.source in cfg.config.sources and cfg.config.sources[m.source].kind == m.kind:
        with wiring.source_session(cfg, m.source) as source:
            yield source
        return
    settings: PostgresSource | MysqlSource | SqliteSource | DirectorySource
    if m.kind == "postgresql":
        settings = PostgresSource(kind="postgresql", dsn=dest, targets=[target])
    elif m.kind == "mysql":
        settings = MysqlSource(kind="mysql", dsn=dest, targets=[target])
    elif m.kind == "sqlite":
        settings = SqliteSource(kind="sqlite", path=dest, targets=[target])
    elif m.kind == "directory":
        settings = DirectorySource(kind="directory", path=dest, targets=[target])
    else:
        raise UsageError(f"snapshot {m.id}: unknown kind {m.kind!r}; upgrade recoveryd")
    with wiring.staging(cfg, f"restore-{m.source}") as tmp_dir:
        yield wiring.make_source(
            m.source, settings, base_dir=cfg.path.parent, runner=None, tmp_dir=tmp_dir
        )


def restore(
    cfg: LoadedConfig,
    snapshot_id: str,
    dest: str,
    *,
    target: str | None = None,
    progress: ProgressCallback | None = None,
    password: str | None = None,
    admit: Callable[[str], None] | None = None,
) -> SnapshotInfo:
    """Restore a snapshot (id or unique prefix) into `dest`; returns what was restored.

    `password` authenticates to a database `dest` (else one inside `dest`, else
    the configured source's). `admit(source)` is called with the snapshot's
    source once it is found, before anything is written; it may refuse by
    raising (the CLI's load-shedding check, `shedding.check_restore`).

    Every chunk is authenticated before its bytes reach the destination; a
    damaged snapshot raises IntegrityError (exit 3) naming snapshot and object.
    """
    from recoveryd.sources.base import SourceInfo

    _mask_inline_password(dest)
    st = wiring.state(cfg)
    try:
        with holder(cfg, snapshot_id, target) as (repo, sid, m):
            if admit is not None:
                admit(m.source)
            run_id = st.start_run("restore", source=m.source, target=repo.name)
            started = time.monotonic()
            try:
                info = SourceInfo(
                    kind=m.kind,
                    stream_format=m.stream_format,
                    engine_version=m.engine_version,
                    consistency=dict(m.consistency),
                    extra=dict(m.extra),
                )
                with restore_session(cfg, m, dest, repo.name) as source:
                    if m.parts:
                        _restore_parts(source, repo, sid, m, dest, info, progress, password)
                    else:
                        with repo.restore_stream(sid) as reader:
                            stream = _CountingReader(reader, progress, m.size)
                            if password is not None and m.kind in ("postgresql", "mysql"):
                                source.restore(stream, dest, info, password=password)  # type: ignore[call-arg]
                            else:
                                source.restore(stream, dest, info)
            except BaseException as exc:
                st.end_run(run_id, "failed", snapshot_id=sid, error=_short(exc))
                raise
            st.end_run(
                run_id,
                "ok",
                snapshot_id=sid,
                bytes_read=m.size,
                details={"seconds": round(time.monotonic() - started, 3)},
            )
            return m.info(repo.name)
    finally:
        st.close()


@contextlib.contextmanager
def holder(
    cfg: LoadedConfig, snapshot_id: str, target: str | None
) -> Iterator[tuple[Repository, str, Manifest]]:
    """The first target (in configuration order) whose repository opens and holds a readable
    manifest of `snapshot_id`: a damaged or unreachable target does not hide a good copy
    elsewhere. Raises the first such error, or UsageError, when no target has it."""
    from recoveryd.errors import RepositoryMissingError, StoreError

    trouble: RecoverydError | None = None
    for name in wiring.target_names(cfg, target):
        try:
            repo = wiring.open_repository(cfg, name)
        except (IntegrityError, StoreError, RepositoryMissingError) as exc:
            trouble = trouble or exc
            continue
        try:
            sid = repo.resolve(snapshot_id)
            m = repo.manifest(sid)
        except (IntegrityError, StoreError, KeyFileError) as exc:
            # a key that does not open the repository is not "snapshot not found"
            trouble = trouble or exc
            repo.store.close()
            continue
        except SnapshotNotFoundError as exc:
            repo.store.close()
            trouble = trouble or (exc if target is not None else None)
            continue
        except BaseException:  # an ambiguous prefix, an interruption
            repo.store.close()
            raise
        try:
            yield repo, sid, m
        finally:
            repo.store.close()
        return
    if trouble is not None:
        raise trouble
    raise UsageError(
        f"snapshot {snapshot_id}: not found in any target; list them with `recoveryd snapshots`"
    )


def _mask_inline_password(dest: str) -> None:
    """A password written inside a destination URI (`postgresql://u:PW@h/db`) is masked
    wherever it shows up later, even where the URI was reshaped (e.g. read as a path)."""
    from urllib.parse import unquote, urlsplit

    from recoveryd.secrets import REDACTOR

    if "://" not in dest:
        return  # `password=...` in keyword DSNs is masked by pattern
    try:
        password = urlsplit(dest).password
    except ValueError:
        return
    if password:
        REDACTOR.add(password)
        REDACTOR.add(unquote(password))


def _short(exc: BaseException) -> str:
    from recoveryd.secrets import redact

    return redact(str(exc) or type(exc).__name__)[:500]


def copy(
    cfg: LoadedConfig,
    from_target: str,
    to_target: str,
    snapshot_ids: Sequence[str] = (),
    *,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """Copy snapshots (all that `to_target` lacks, when none named); returns the ids copied.

    `progress` follows the bytes of the snapshots to copy (their total known at the start)."""
    wiring.target_names(cfg, from_target)
    wiring.target_names(cfg, to_target)
    if from_target == to_target:
        raise UsageError("copy: --from and --to name the same target; name two different ones")
    st = wiring.state(cfg)
    src = wiring.open_repository(cfg, from_target)
    dst = wiring.open_repository(cfg, to_target)
    try:
        wanted = [src.resolve(s) for s in snapshot_ids] if snapshot_ids else src.snapshot_ids()
        present = set(dst.snapshot_ids())
        todo = [sid for sid in wanted if sid not in present]
        tally = Tally(progress, total=sum(src.manifest(sid).size for sid in todo))
        copied: list[str] = []
        for sid in todo:
            run = st.start_run("copy", source=src.manifest(sid).source, target=to_target)
            try:
                src.copy_snapshot(sid, dst, tally)
            except BaseException as exc:
                st.end_run(run, "failed", snapshot_id=sid, error=_short(exc))
                raise
            st.end_run(run, "ok", snapshot_id=sid, details={"from": from_target})
            copied.append(sid)
        return copied
    finally:
        src.store.close()
        dst.store.close()
        st.close()

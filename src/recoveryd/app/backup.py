"""`backup`: snapshot sources into all their targets, one read per source.

Sources run in sequence, or `concurrency` at a time. Each asks the
`Admission` first (the load governor, docs/OPERATIONS.md): "wait" refuses the
job (exit 5) unless its RPO is about to break, in which case the governor
itself answers "throttled". The admission records the deferral (once; not here).
Running work passes the governor's gate at every chunk boundary, combined
with the caller's `cancel` event (SIGINT/SIGTERM).
Every source's attempt is a run in the state store.

The daemon's job runner admits and records its jobs itself: it calls
`write_source`, the work alone, so a scheduled backup is admitted once and
recorded once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from recoveryd import flow
from recoveryd.app import wiring
from recoveryd.config import LoadedConfig
from recoveryd.errors import InterruptedOperation, RecoverydError, RefusedError, StoreError
from recoveryd.flow import Admission, AlwaysAdmit, Gate, ProgressCallback
from recoveryd.model import BackupResult, MissingTarget
from recoveryd.secrets import redact
from recoveryd.state import StateStore

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository

DUE_SOON_FRACTION = 0.9
"""From the CLI, a job is due soon when its last good snapshot is older than this fraction
of the RPO."""
BACKUP_RUNS = ("backup", "daemon_backup")
"""Run kinds of a backup: by the CLI (or drills), and by the daemon's job runner."""


class CancellableGate:
    """A governor's gate that also stops when `cancel` is set."""

    def __init__(self, inner: Gate, cancel: threading.Event) -> None:
        self._inner = inner
        self._cancel = cancel

    def checkpoint(self) -> None:
        if self._cancel.is_set():
            raise InterruptedOperation("interrupted; the snapshot was not committed")
        self._inner.checkpoint()

    def throttle(self, nbytes: int) -> None:
        self._inner.throttle(nbytes)

    def concurrency(self, configured: int) -> int:
        return self._inner.concurrency(configured)


def backup(
    cfg: LoadedConfig,
    sources: Sequence[str] | None = None,
    *,
    admission: Admission | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    concurrency: int = 1,
) -> list[BackupResult]:
    """Snapshot `sources` (all configured when None) now; one BackupResult per source.

    A failing source does not stop the others: every source is tried, then the
    failure is raised (the error itself for one source; PartialBackupError,
    carrying the results of the others, for several). An interruption stops
    everything at once. Nothing of a failed or interrupted source is committed.
    """
    names = wiring.source_names(cfg, list(sources) if sources else None)
    cancel = cancel or threading.Event()
    admission = admission or AlwaysAdmit(cancel)
    st = wiring.state(cfg)
    results: list[BackupResult] = []
    failures: list[tuple[str, RecoverydError]] = []

    def attempt(name: str) -> None:
        try:
            results.append(_one(cfg, st, name, admission, progress, cancel))
        except InterruptedOperation:
            cancel.set()
            raise
        except RecoverydError as exc:
            failures.append((name, exc))

    try:
        if concurrency <= 1 or len(names) == 1:
            for name in names:
                attempt(name)
        else:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="backup") as pool:
                for fut in [pool.submit(attempt, n) for n in names]:
                    fut.result()
    finally:
        st.close()
    if failures and len(names) == 1:
        raise failures[0][1]
    if failures:
        raise PartialBackupError(failures, sorted(results, key=lambda r: names.index(r.source)))
    return sorted(results, key=lambda r: names.index(r.source))


class PartialBackupError(RecoverydError):
    """Some sources failed; `results` holds the snapshots of the others (committed)."""

    def __init__(
        self, failures: Sequence[tuple[str, RecoverydError]], results: Sequence[BackupResult]
    ) -> None:
        _, first = failures[0]
        others = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(
            f"backup failed for {len(failures)} of {len(failures) + len(results)} sources; "
            f"{first.message}{others}"
        )
        self.exit_code = first.exit_code
        self.failures = tuple(failures)
        self.results = tuple(results)


def due_soon(st: StateStore, cfg: LoadedConfig, name: str, now: datetime | None = None) -> bool:
    """True when waiting longer would break the source's RPO (`flow.due_soon`, waiting a
    tenth of the RPO: the operator's retry is not known)."""
    rpo = cfg.config.sources[name].rpo
    if rpo is None:
        return False
    last = [r for r in (st.last_run(k, name) for k in BACKUP_RUNS) if r and r.ended_at]
    newest = max((r.ended_at for r in last if r.ended_at), default=None)
    wait = rpo * (1 - DUE_SOON_FRACTION)
    return flow.due_soon(rpo, newest, now or datetime.now(UTC), wait)


@dataclass(frozen=True)
class SourceSnapshot:
    """One source's snapshot written to its targets, with what each target stored."""

    result: BackupResult
    stored_by_target: dict[str, int]

    @property
    def bytes_stored(self) -> int:
        return sum(self.stored_by_target.values())

    def details(self) -> dict[str, object]:
        """What a run record keeps of it besides snapshot id and bytes."""
        return {
            "seconds": round(self.result.seconds, 3),
            "targets": dict(self.stored_by_target),
            "missing_targets": [m.to_json() for m in self.result.missing_targets],
        }


def write_source(
    cfg: LoadedConfig,
    name: str,
    gate: Gate,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event,
    state: StateStore | None = None,
    labels: Mapping[str, str] | None = None,
) -> SourceSnapshot:
    """Snapshot source `name` into all its targets, passing `gate` at every chunk boundary;
    `labels` are recorded in the manifest's `extra` (fleet mode: its slot and member).

    The work only: the caller has admitted it and records the run (`backup` here, the
    daemon's job runner for scheduled backups). Nothing is committed when it fails.
    Targets that do not answer are left out (down to the source's `min_targets`): the
    snapshot is then under-replicated (`missing_targets`), and an `under_replicated`
    event goes to `state` (the configured state store when None).
    """
    from recoveryd.repo import SnapshotMeta, write_snapshot_to

    settings = cfg.config.sources[name]
    started = time.monotonic()
    repos: list[Repository] = []
    stop = flow.StopSignal(cancel)  # the stores' view of the stop: shielded at the commit
    try:
        repos, missing = _open_targets(cfg, name, stop)
        meta = SnapshotMeta(
            source=name, classification=settings.classification, labels=dict(labels or {})
        )
        with wiring.source_session(cfg, name) as source:
            reader = source.snapshot()
            written = write_snapshot_to(
                reader, repos, meta, min_targets=settings.min_targets,
                gate=CancellableGate(gate, cancel), progress=progress,
                compression=settings.compression, commit_shield=stop.shielded,
            )  # fmt: skip
    finally:
        for r in repos:
            r.store.close()
    missing.update({t: e.message for t, e in written.missing.items()})
    lost = tuple(MissingTarget(t, redact(missing[t])) for t in settings.targets if t in missing)
    infos = written.infos
    first = infos[0]
    result = BackupResult(
        id=first.id,
        source=name,
        targets=tuple(i.targets[0] for i in infos if i.targets),
        size=first.size,
        stored_size=max(i.stored_size for i in infos),
        seconds=time.monotonic() - started,
        missing_targets=lost,
    )
    if lost:
        _record_lost(cfg, state, result)
    return SourceSnapshot(result, {i.targets[0] if i.targets else "": i.stored_size for i in infos})


def slot_taken(cfg: LoadedConfig, name: str, slot: str) -> datetime | None:
    """Fleet mode: the end time of a snapshot of source `name` labelled with schedule slot
    `slot` in one of its targets that answer (those that do not are skipped: the backup
    itself will say); None when there is none."""
    for target in cfg.config.sources[name].targets:
        try:
            repo = wiring.open_repository(cfg, target)
        except StoreError:
            continue
        try:
            for sid in repo.snapshot_ids():
                m = repo.manifest(sid)
                if m.source == name and m.extra.get("fleet_slot") == slot:
                    return m.end_time
        except StoreError:
            continue
        finally:
            repo.store.close()
    return None


def _record_lost(cfg: LoadedConfig, state: StateStore | None, result: BackupResult) -> None:
    """An `under_replicated` event naming the targets the snapshot is missing on."""
    st = state or wiring.state(cfg)
    try:
        st.record_event(
            "under_replicated",
            {
                "snapshot": result.id,
                "missing_targets": [m.to_json() for m in result.missing_targets],
            },
            source=result.source,
        )
    finally:
        if state is None:
            st.close()


def _one(
    cfg: LoadedConfig,
    st: StateStore,
    name: str,
    admission: Admission,
    progress: ProgressCallback | None,
    cancel: threading.Event,
) -> BackupResult:
    settings = cfg.config.sources[name]
    decision = admission.admit(
        settings.priority, job=f"backup:{name}", due_soon=due_soon(st, cfg, name)
    )
    if decision == "wait":  # the admission records its own deferrals (the governor does)
        raise RefusedError(
            f"backup of {name}: deferred, load shedding is in force (level "
            f"{admission.level()}); it runs when the pressure drops or its RPO requires it"
        )
    run = st.start_run("backup", source=name, target=",".join(settings.targets))
    try:
        done = write_source(
            cfg, name, admission.gate(settings.priority, cancel=cancel), progress=progress,
            cancel=cancel, state=st,
        )  # fmt: skip
    except BaseException as exc:
        result = (
            "aborted" if isinstance(exc, InterruptedOperation | KeyboardInterrupt) else "failed"
        )
        st.end_run(run, result, error=redact(_message(exc))[:500])
        raise
    st.end_run(
        run,
        "ok",
        bytes_read=done.result.size,
        bytes_stored=done.bytes_stored,
        snapshot_id=done.result.id,
        details={**done.details(), "decision": decision},
    )
    return done.result


def _open_targets(
    cfg: LoadedConfig, name: str, cancel: threading.Event
) -> tuple[list[Repository], dict[str, str]]:
    """The repositories of the source's targets that answer, and the error of each that does
    not. A target without a repository raises RepositoryMissingError (exit 2: run `init`);
    fewer than `min_targets` answering raises the first store error, naming the count.
    Their stores stop waiting (for bandwidth, before a retry) as soon as `cancel` is set."""
    settings = cfg.config.sources[name]
    repos: list[Repository] = []
    missing: dict[str, str] = {}
    first: StoreError | None = None
    try:
        for target in settings.targets:
            try:
                repos.append(wiring.open_repository(cfg, target, cancel=cancel))
            except StoreError as exc:
                missing[target] = exc.message
                first = first or exc
    except BaseException:
        for r in repos:
            r.store.close()
        raise
    if len(repos) < settings.min_targets and first is not None:
        for r in repos:
            r.store.close()
        raise StoreError(
            f"backup of {name}: {len(repos)} of {len(settings.targets)} targets answer and "
            f"min_targets is {settings.min_targets}; {first.message}"
        )
    return repos, missing


def _message(exc: BaseException) -> str:
    if isinstance(exc, RecoverydError):
        return exc.message
    return str(exc) or type(exc).__name__

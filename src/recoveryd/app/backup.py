"""`backup`: snapshot sources into all their targets, one read per source.

Sources run in sequence, or `concurrency` at a time. Each asks the
`Admission` first (the load governor, SPEC §5): "wait" refuses the job
(exit 5) unless its RPO is about to break, in which case the governor itself
answers "throttled". The admission records the deferral (once; not here).
Running work passes the governor's gate at every chunk boundary, combined
with the caller's `cancel` event (SIGINT/SIGTERM).
Every source's attempt is a run in the state store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING

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
"""A job is due soon when its last good snapshot is older than this fraction of the RPO."""


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
    """True when waiting longer would break the source's RPO."""
    rpo = cfg.config.sources[name].rpo
    if rpo is None:
        return False
    last = st.last_run("backup", name)
    if last is None or last.ended_at is None:
        return True
    age = ((now or datetime.now(UTC)) - last.ended_at).total_seconds()
    return age >= rpo * DUE_SOON_FRACTION


def _one(
    cfg: LoadedConfig,
    st: StateStore,
    name: str,
    admission: Admission,
    progress: ProgressCallback | None,
    cancel: threading.Event,
) -> BackupResult:
    from recoveryd.repo import SnapshotMeta, write_snapshot_to

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
    started = time.monotonic()
    repos: list[Repository] = []
    try:
        repos, missing = _open_targets(cfg, name)
        gate = CancellableGate(admission.gate(settings.priority), cancel)
        meta = SnapshotMeta(source=name, classification=settings.classification)
        with wiring.source_session(cfg, name) as source:
            reader = source.snapshot()
            written = write_snapshot_to(
                reader, repos, meta, min_targets=settings.min_targets, gate=gate,
                progress=progress,
            )  # fmt: skip
    except BaseException as exc:
        result = (
            "aborted" if isinstance(exc, InterruptedOperation | KeyboardInterrupt) else "failed"
        )
        st.end_run(run, result, error=redact(_message(exc))[:500])
        raise
    finally:
        for r in repos:
            r.store.close()
    missing.update({t: e.message for t, e in written.missing.items()})
    lost = tuple(MissingTarget(t, redact(missing[t])) for t in settings.targets if t in missing)
    infos = written.infos
    seconds = time.monotonic() - started
    first = infos[0]
    st.end_run(
        run,
        "ok",
        bytes_read=first.size,
        bytes_stored=sum(i.stored_size for i in infos),
        snapshot_id=first.id,
        details={
            "seconds": round(seconds, 3),
            "targets": {i.targets[0] if i.targets else "": i.stored_size for i in infos},
            "missing_targets": [m.to_json() for m in lost],
            "decision": decision,
        },
    )
    if lost:
        st.record_event(
            "under_replicated",
            {"snapshot": first.id, "missing_targets": [m.to_json() for m in lost]},
            source=name,
        )
    return BackupResult(
        id=first.id,
        source=name,
        targets=tuple(i.targets[0] for i in infos if i.targets),
        size=first.size,
        stored_size=max(i.stored_size for i in infos),
        seconds=seconds,
        missing_targets=lost,
    )


def _open_targets(cfg: LoadedConfig, name: str) -> tuple[list[Repository], dict[str, str]]:
    """The repositories of the source's targets that answer, and the error of each that does
    not. A target without a repository raises RepositoryMissingError (exit 2: run `init`);
    fewer than `min_targets` answering raises the first store error, naming the count."""
    settings = cfg.config.sources[name]
    repos: list[Repository] = []
    missing: dict[str, str] = {}
    first: StoreError | None = None
    try:
        for target in settings.targets:
            try:
                repos.append(wiring.open_repository(cfg, target))
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

"""`verify`, and what is known of each copy of a snapshot.

Verified state belongs to a copy: a snapshot on `local` and its copy on
`offsite` are different objects in different stores, so each (snapshot,
target) pair has its own result. One corrupted copy does not mark the intact
one failed, and a fresh copy is not "ok" before it was verified where it lives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from recoveryd.app import wiring
from recoveryd.app.snapshots import existing_repositories, locate
from recoveryd.app.walcheck import log_problems
from recoveryd.config import LoadedConfig
from recoveryd.errors import IntegrityError, RecoverydError, SnapshotNotFoundError
from recoveryd.flow import ProgressCallback, Tally
from recoveryd.model import Problem, VerifiedState, VerifyReport
from recoveryd.state import StateStore

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository


def verified_states(st: StateStore) -> dict[tuple[str, str], VerifiedState]:
    """The result of the last verify of each copy: (snapshot id, target) -> "ok" | "failed".

    Verify runs recorded without a target (before results were kept per copy) say
    nothing about any copy and are ignored."""
    out: dict[tuple[str, str], VerifiedState] = {}
    for run in reversed(st.runs(kind="verify", limit=100000)):  # oldest first: newest wins
        if run.snapshot_id and run.target and run.result in ("ok", "failed"):
            out[(run.snapshot_id, run.target)] = "ok" if run.result == "ok" else "failed"
    return out


def summary(states: Sequence[VerifiedState]) -> VerifiedState:
    """The state of a snapshot over the copies listed: "failed" when one of them failed,
    "ok" when every one verified, else None (not every copy was verified yet)."""
    if "failed" in states:
        return "failed"
    if states and all(s == "ok" for s in states):
        return "ok"
    return None


def verify(
    cfg: LoadedConfig,
    snapshot_ids: Sequence[str] = (),
    *,
    read_data: bool | str = False,
    target: str | None = None,
    strict: bool = True,
    progress: ProgressCallback | None = None,
) -> VerifyReport:
    """Check snapshots in every target that has them (all snapshots when none named).

    Records each copy's result (snapshot, target) in the state store. With `strict`,
    problems raise IntegrityError (exit 3) naming the first snapshot and object.
    `progress` follows the chunks read (`read_data`): their total grows as each target
    starts.
    """
    mode: bool | Literal["sample"] = "sample" if read_data == "sample" else bool(read_data)
    checked: list[str] = []
    objects = 0
    nbytes = 0
    problems: list[Problem] = []
    tally = Tally(progress)
    with existing_repositories(cfg, target) as repos:
        wanted = _resolve_everywhere(cfg, repos, snapshot_ids)
        for repo in repos:
            ids = wanted.get(repo.name, []) if snapshot_ids else []
            if snapshot_ids and not ids:
                continue
            rep = repo.verify(ids, mode, tally)
            _record_verify(cfg, repo, rep, mode)
            checked.extend(s for s in rep.snapshots if s not in checked)
            objects += rep.objects_checked
            nbytes += rep.bytes_read
            problems.extend(
                replace(p, message=f"{p.message} (target {repo.name})")
                for p in [*rep.problems, *([] if snapshot_ids else log_problems(repo))]
            )
    report = VerifyReport(tuple(checked), objects, nbytes, tuple(problems))
    if strict and problems:
        first = problems[0]
        raise IntegrityError(
            f"verify failed: snapshot {first.snapshot or '-'}, object {first.obj}: "
            f"{first.message}; restore from another target or an older snapshot",
            snapshot=first.snapshot,
            obj=first.obj,
        )
    return report


def _resolve_everywhere(
    cfg: LoadedConfig, repos: Sequence[Repository], snapshot_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Target name -> full ids of the requested snapshots it holds; UsageError for unknown ids."""
    out: dict[str, list[str]] = {r.name: [] for r in repos}
    for wanted in snapshot_ids:
        found = False
        for repo in repos:
            try:
                out[repo.name].append(repo.resolve(wanted))
                found = True
            except SnapshotNotFoundError:
                continue
        if not found:
            locate(cfg, repos, wanted)  # raises the not-found error
    return out


def _source_of(repo: Repository, snapshot_id: str) -> str | None:
    """The source a verified snapshot belongs to (its manifest is cached by verify);
    None when the manifest itself is unreadable."""
    try:
        return repo.manifest(snapshot_id).source
    except RecoverydError:
        return None


def _record_verify(cfg: LoadedConfig, repo: Repository, rep: VerifyReport, mode: object) -> None:
    """One verify run per copy checked in `repo`."""
    first: Mapping[str, str] = {}
    for p in reversed(rep.problems):
        if p.snapshot:
            first = {**first, p.snapshot: p.message}
    st = wiring.state(cfg)
    try:
        for sid in rep.snapshots:
            run = st.start_run("verify", source=_source_of(repo, sid), target=repo.name)
            st.end_run(
                run,
                "failed" if sid in first else "ok",
                snapshot_id=sid,
                error=first.get(sid),
                details={"read_data": mode},
            )
    finally:
        st.close()

"""Fleet mode in the daemon: which jobs this member owns, one run per job and slot.

`FleetMode` keeps this member's view of the group (refreshed every third of a
lease: heartbeat, then the member list) and answers the job runner's one
question, `claim(spec)`: may this member run this job now? Yes only when

1. the member is not fenced (`fence.py`): its last answered refresh was sent
   less than two thirds of a lease ago. A member cut off from etcd stops its
   running jobs and runs nothing new from that moment, a third of a lease before
   etcd can drop its lease and the others take its jobs over;
2. the consistent-hash partition over the live members that serve the job's
   site names this member;
3. it holds the lock named after the job and its schedule slot; and
4. under that lock: no member recorded a run of the job in that slot (the slot
   record in the coordination service, written by `finished` when a run ends,
   success or failure), and for a backup no snapshot of the source in the store
   belongs to that slot yet (the manifest records its slot).

A failed run closes its slot too (no other member retries it there), except a
backup whose source is past its RPO: the catch-up rule gives it one more run.
A run that did not happen (deferred by the load governor, aborted by a shutdown
or a lost claim) leaves its slot open. Slot records expire by themselves
`RECORD_SLOTS` slots (plus a lease) after they were written.

Jobs gained because another member left run at once (a `takeover` run) when they
are backups: the slot checks make that a no-op when the slot was done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from recoveryd import flow
from recoveryd.daemon.fence import Keeper, LeaseFence
from recoveryd.daemon.notify import Alert
from recoveryd.daemon.schedule import JobSpec
from recoveryd.fleet import (
    Coordination,
    CoordinationError,
    Member,
    Partition,
    SlotLock,
    SlotRecord,
    job_key,
)
from recoveryd.observe import get_logger
from recoveryd.state import StateStore

log = get_logger("recoveryd.daemon.fleet")
LOCK_RETRY = 0.25  # seconds between attempts to take a slot's lock while etcd does not answer
RECORD_SLOTS = 3  # how many slots a slot record outlives its own (then etcd drops it)
OPEN_RESULTS = ("deferred", "aborted")  # the job did not run: its slot stays open
DONE_RESULTS = ("ok", "degraded")  # a run that did its work (anything else failed)


def slot_text(slot: datetime) -> str:
    """How a slot is written in lock names and manifests: UTC, ISO 8601, `Z`."""
    return slot.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FleetView:
    """This member's view of the fleet (daemon.json, `recoveryd status`, metrics)."""

    member: str
    group: str
    members: tuple[str, ...]
    owned_jobs: tuple[str, ...]
    isolated: bool

    def to_json(self) -> dict[str, object]:
        return {"member": self.member, "group": self.group, "members": list(self.members),
                "owned_jobs": list(self.owned_jobs), "isolated": self.isolated}  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """This member runs the job for this slot. `lost` is set when the member is cut off
    from etcd while the job runs: it can no longer prove the slot is its own."""

    member: str
    slot: datetime
    lost: threading.Event = field(default_factory=threading.Event, compare=False)
    run: int = 1  # which run of the job in its slot (2: a catch-up rerun of a failed backup)
    job: str = ""  # the job's id

    def cancel_event(self, cancel: threading.Event) -> threading.Event:
        """An event set when `cancel` is or when this claim is lost: read at chunk
        boundaries, and waited on by the uploads that wait for bandwidth."""
        return flow.AnyEvent(cancel, self.lost)

    @property
    def slot_text(self) -> str:
        return slot_text(self.slot)

    def labels(self) -> dict[str, str]:
        """What the snapshot's manifest records (`extra`)."""
        return {"fleet_slot": self.slot_text, "fleet_member": self.member}


@dataclass(frozen=True)
class FleetHooks:
    """What fleet mode needs from the rest of the daemon."""

    specs: Callable[[], Mapping[str, JobSpec]]  # the scheduled jobs
    site: Callable[[JobSpec], str | None]  # the site of a job's source
    slot_of: Callable[[JobSpec, datetime], datetime]
    taken: Callable[[JobSpec, datetime], bool]  # a snapshot of this slot is in the store
    takeover: Callable[[JobSpec], None]  # run a gained job now
    alert: Callable[[Alert], object]
    changed: Callable[[], None] = lambda: None  # what this member owns changed
    slot_length: Callable[[JobSpec, datetime], float] = lambda _spec, _slot: 86400.0
    overdue: Callable[[JobSpec], bool] = lambda _spec: False  # the catch-up rule says run
    fenced: Callable[[int], object] = lambda _jobs: None  # this many running jobs were stopped


def assign(
    specs: Mapping[str, JobSpec], members: list[Member], site: Callable[[JobSpec], str | None]
) -> dict[str, list[str]]:
    """Job ids by owning member (members that own nothing have an empty list; jobs no live
    member may run are under the empty name)."""
    part = Partition(members)
    out: dict[str, list[str]] = {m.name: [] for m in members}
    for job_id, spec in sorted(specs.items()):
        owner = part.owner(job_key(job_id, spec.source), site(spec))
        out.setdefault(owner or "", []).append(job_id)
    return out


class FleetMode:
    """This member's part of the fleet."""

    def __init__(
        self,
        coord: Coordination,
        hooks: FleetHooks,
        *,
        lease: float,
        state: StateStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.coord = coord
        self.hooks = hooks
        self.lease = lease
        self.state = state
        self.clock = clock
        self.monotonic = monotonic
        self._guard = threading.Lock()
        self.fence = LeaseFence(lease, monotonic)
        self._keeper: Keeper | None = None
        self._members: list[Member] = []
        self._partition = Partition([])  # rebuilt when the members change (its rings cached)
        self._owned: set[str] | None = None
        self._isolated = False
        self._claims: dict[int, Claim] = {}  # the claims held now, by id

    @property
    def member(self) -> str:
        return self.coord.member

    # --- the group ---------------------------------------------------------------------

    def start(self) -> None:
        """Join and take a first view of the group (cut off when it does not answer)."""
        try:
            self.coord.join()
        except CoordinationError as exc:
            self._cut_off(exc)
            return
        self.refresh()

    def keep(self) -> None:
        """Refresh in the background (every third of a lease) and fence at the deadline."""
        self._keeper = Keeper(self.fence, self.refresh, self.fence_now)
        self._keeper.start()

    def refresh(self) -> bool:
        """Heartbeat, read the members, work out what this member owns now; False when
        the coordination service did not answer."""
        sent = self.monotonic()
        try:
            self.coord.heartbeat(len(self._owned or ()))
            members = self.coord.members()
        except CoordinationError as exc:
            self._cut_off(exc)
            return False
        if not self.fence.renewed(sent, self.monotonic()):
            self._isolate("the lease may have run out before this refresh reached etcd")
        if self._keeper is not None:
            self._keeper.renewed()
        specs = self.hooks.specs()
        owned = set(assign(specs, members, self.hooks.site).get(self.member, []))
        with self._guard:
            before = [m.name for m in self._members]
            if members != self._members:
                self._partition = Partition(members)
            self._members = members
            previous, self._owned = self._owned, owned
            rejoined, self._isolated = self._isolated, False
        names = [m.name for m in members]
        if names != before:
            self.state.record_event("fleet_members", {"members": names, "owned": len(owned)})
            log.info("fleet_members", members=names, owned=len(owned), member=self.member)
        if rejoined:
            self.state.record_event("fleet_rejoined", {"member": self.member})
            self.hooks.alert(Alert("recovery", f"fleet member {self.member} rejoined",
                                   "The coordination service answers again."))  # fmt: skip
        if owned != previous:
            self.hooks.changed()
        if previous is not None:
            self._take_over(sorted(owned - previous), specs)
        return True

    def _take_over(self, gained: list[str], specs: Mapping[str, JobSpec]) -> None:
        for job_id in gained:
            spec = specs.get(job_id)
            if spec is not None and spec.kind == "backup":
                self.state.record_event("fleet_takeover", {"job": job_id}, source=spec.source)
                self.hooks.takeover(spec)

    def _cut_off(self, exc: CoordinationError) -> None:
        log.warning("fleet_unreachable", error=exc.message, member=self.member)
        if self.fence.fenced():
            self._isolate(exc.message)

    def fence_now(self) -> None:
        """The fence's deadline passed without an answered refresh (the keeper's call)."""
        if self.fence.fenced():
            self._isolate(f"no refresh answered for {self.lease - self.fence.margin:g}s")

    def _isolate(self, why: str) -> None:
        """Fenced: the running jobs stop at once (their claims are lost), no new one runs."""
        with self._guard:
            held = list(self._claims.values())
            first, self._isolated = not self._isolated, True
        stopped = sorted(c.job for c in held if not c.lost.is_set())
        for claim in held:  # running jobs stop at their next chunk boundary
            claim.lost.set()
        if stopped:
            self.hooks.fenced(len(stopped))
        if not first and not stopped:
            return
        margin = round(self.fence.margin, 3)
        data = {"member": self.member, "error": why, "stopped": stopped, "margin": margin}
        self.state.record_event("fleet_isolated", data)
        log.error("fleet_isolated", member=self.member, error=why, stopped=stopped,
                  margin=margin, note="fenced: running jobs stopped, no new job runs")  # fmt: skip
        if first:
            self.hooks.alert(
                Alert("failure", f"fleet member {self.member} stopped scheduling",
                      f"The coordination service did not answer in time to renew this "
                      f"member's lease ({self.lease:g}s); it stopped {len(stopped)} running "
                      f"job(s) and runs none until it answers. {why}")
            )  # fmt: skip

    # --- one run -----------------------------------------------------------------------

    def owner(self, spec: JobSpec) -> str | None:
        with self._guard:
            part = self._partition
        return part.owner(job_key(spec.id, spec.source), self.hooks.site(spec))

    def elsewhere(self, spec: JobSpec) -> bool:
        """Another live member owns `spec` (and this member is not cut off): the job is
        not this member's business at all (no run, no record)."""
        return not self.fence.fenced() and self.owner(spec) != self.member

    @contextmanager
    def claim(self, spec: JobSpec) -> Iterator[Claim | None]:
        """A Claim while this member runs `spec` for the current slot; None when it must
        not (another member owns it or holds its slot, the slot is done, cut off)."""
        slot = self.hooks.slot_of(spec, self.clock())
        self._ride_out_fence(spec)
        why = self._refusal(spec)
        if why is not None:
            log.debug("fleet_not_running", job=spec.id, reason=why, member=self.member)
            if why == "cut off" and self.owner(spec) == self.member:  # it was ours
                self.state.record_event("fleet_skipped", {"job": spec.id, "reason": why,
                                        "slot": slot.isoformat()}, source=spec.source)  # fmt: skip
            yield None
            return
        claim = Claim(self.member, slot, job=spec.id)
        lock = self.coord.lock(_run_name(spec, claim))
        held = not self._running_here(claim) and self._acquire(lock, spec)
        try:
            ours = held and self.owner(spec) == self.member
            before = self._runs_before(spec, claim) if ours else None
            if before is not None:
                claim = replace(claim, run=before + 1)
                with self._guard:
                    self._claims[id(claim)] = claim
            # fenced meanwhile: the fence may not have seen this claim, so it is not run
            yield claim if before is not None and not self.fence.fenced() else None
        finally:
            with self._guard:
                self._claims.pop(id(claim), None)
            if held:
                lock.release()

    def _running_here(self, claim: Claim) -> bool:
        """This member already runs the job for that slot."""
        with self._guard:
            held = list(self._claims.values())
        return any(c.job == claim.job and c.slot == claim.slot for c in held)

    def _acquire(self, lock: SlotLock, spec: JobSpec) -> bool:
        """Take the slot's lock; while etcd elects a leader (or one URL fails), try again
        until this member is fenced. Held by another member while the job is this
        member's: try again for one lease (a member that left holds it until its lease
        runs out, then the run is this member's; a live one still running it keeps it)."""
        until = self.monotonic() + self.lease
        while True:
            try:
                if lock.acquire():
                    return True
                if self.owner(spec) != self.member or self.monotonic() >= until:
                    return False
            except CoordinationError as exc:
                self._cut_off(exc)
                if self.fence.fenced():
                    return False
            time.sleep(LOCK_RETRY)

    def _ride_out_fence(self, spec: JobSpec) -> None:
        """Fenced when a job of this member's comes due: wait up to a lease for a refresh
        to be answered (an etcd election, one slow answer), then decide. Nothing runs
        meanwhile; the claim's own checks (lock, slot record, store) follow as always."""
        until = self.monotonic() + self.lease
        while (
            self._keeper is not None
            and self.fence.fenced()
            and self.monotonic() < until
            and self.owner(spec) == self.member
        ):
            time.sleep(LOCK_RETRY)

    def _refusal(self, spec: JobSpec) -> str | None:
        if self.fence.fenced():
            self._isolate("no refresh answered within two thirds of the lease")
            return "cut off"
        if self.owner(spec) != self.member:
            return "owned by another member"
        return None

    def _runs_before(self, spec: JobSpec, claim: Claim) -> int | None:
        """How many runs of `spec` its slot had (0, or 1 before a catch-up rerun); None when
        it must not run again: a member recorded a run of the slot, or (a backup) the store
        holds its snapshot, or etcd cannot say (nothing runs that is not proven)."""
        try:
            record = self.coord.slot_record(_run_name(spec, claim))
        except CoordinationError as exc:
            self._cut_off(exc)
            return None
        if record is not None and not self._catch_up(spec, record):
            self._slot_done(spec, claim.slot, record.member, record.result)
            return None
        if spec.kind == "backup" and self.hooks.taken(spec, claim.slot):
            self._slot_done(spec, claim.slot, None, "ok")
            return None
        return 0 if record is None else record.run

    def _catch_up(self, spec: JobSpec, record: SlotRecord) -> bool:
        """A failed backup of an overdue source runs once more (the catch-up rule), once."""
        return (
            spec.kind == "backup"
            and record.run < 2
            and record.result not in DONE_RESULTS
            and self.hooks.overdue(spec)
        )

    def _slot_done(self, spec: JobSpec, slot: datetime, by: str | None, result: str) -> None:
        data = {"job": spec.id, "slot": slot.isoformat(), "result": result,
                **({"member": by} if by else {})}  # fmt: skip
        self.state.record_event("fleet_slot_done", data, source=spec.source)

    def finished(self, spec: JobSpec, claim: Claim, result: str) -> None:
        """Record, still under the slot's lock, that `spec` ran in its slot with `result`,
        so no member runs it again there (a deferred or aborted run leaves the slot open).
        When etcd does not answer, a warning and an event: the run itself stands."""
        with self._guard:  # the job is over: a fence from now on has nothing to stop
            self._claims.pop(id(claim), None)
        if result in OPEN_RESULTS:
            return
        ttl = RECORD_SLOTS * self.hooks.slot_length(spec, claim.slot) + self.lease
        record = SlotRecord(result, self.member, self.clock(), claim.run)
        try:
            self.coord.record_slot(_run_name(spec, claim), record, ttl)
        except CoordinationError as exc:
            log.warning("fleet_slot_record_failed", job=spec.id, error=exc.message)
            self.state.record_event("fleet_slot_record_failed", {"job": spec.id,
                                    "slot": claim.slot_text, "error": exc.message},
                                    source=spec.source)  # fmt: skip

    # --- visibility --------------------------------------------------------------------

    def view(self) -> FleetView:
        """For daemon.json, `recoveryd status` and the metrics."""
        with self._guard:
            members = tuple(m.name for m in self._members)
            owned = tuple(sorted(self._owned or ()))
            isolated = self._isolated or self.fence.deadline() is None
        return FleetView(self.member, self.coord.group, members, owned, isolated)

    def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.stop()
        self.coord.leave()


def _run_name(spec: JobSpec, claim: Claim) -> str:
    """The name of one run of a job: its slot lock's and its slot record's."""
    return f"{spec.id}@{claim.slot_text}"

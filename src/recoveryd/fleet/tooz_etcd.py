"""The coordination port over OpenStack tooz and etcd (tooz's `etcd3+http://` driver,
through etcd's gRPC gateway). The only module that imports tooz.

Membership: each member's key in the group lives on an etcd lease of `lease`
seconds that `heartbeat` renews; a member that stops (kill -9, power loss, cut
off) drops out of the group when its lease runs out. Its capabilities carry its
sites, its last heartbeat time and its job count (for `recoveryd fleet status`).

Several URLs (every etcd member's client URL): an operation that fails on the
current URL is retried on the next ones, and the member's key is moved onto the
lease of the new connection. Locks are etcd keys on their own lease of the same
length, renewed by `heartbeat` while held.

Slot records (`record_slot`): an etcd key `recoveryd/<group>/done/<job>@<slot>`
holding the run's result, on a lease of its own that nobody renews, so the key
expires by itself a few slots later. They are written with the etcd3gw client
the tooz driver already holds (`coordinator.client`): tooz has no plain
key-value call.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from etcd3gw import exceptions as etcd_errors
from tooz import coordination

from recoveryd.fleet.port import CoordinationError, Member, SlotRecord
from recoveryd.observe import get_logger

log = get_logger("recoveryd.fleet")
T = TypeVar("T")
_FAILURES = (coordination.ToozError, etcd_errors.Etcd3Exception, OSError)


def driver_url(url: str, lease: float) -> str:
    """`url` with the driver's options: locks and membership on leases of `lease`
    seconds; each request given up after a fifth of it (so an unreachable etcd is noticed
    well within one lease)."""
    ttl = max(1, math.ceil(lease))
    request = max(1, math.ceil(lease / 5))
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}timeout={request}&lock_timeout={ttl}&membership_timeout={ttl}"


class ToozLock:
    """A SlotLock over a tooz etcd3 lock."""

    def __init__(self, owner: ToozCoordination, name: str) -> None:
        self._owner = owner
        self._name = name
        self._lock: Any = None

    def acquire(self) -> bool:
        def take(coord: Any) -> bool:
            self._lock = coord.get_lock(self._name.encode())
            return bool(self._lock.acquire(blocking=False))

        return self._owner.call(take)

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            self._lock.release()
        except _FAILURES as exc:  # it expires with its lease anyway
            log.warning("fleet_lock_release_failed", lock=self._name, error=str(exc))
        self._lock = None


class ToozCoordination:
    """The `Coordination` of one member over tooz's etcd3 driver."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        group: str,
        member: str,
        lease: float,
        serves: Sequence[str],
        observer: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.observer = observer
        self.urls = list(urls)
        self.group = group
        self.member = member
        self.lease = lease
        self.serves = tuple(serves)
        self.clock = clock
        self._at = 0
        self._coord: Any = None
        self._guard = threading.RLock()
        self._jobs = 0

    # --- connection --------------------------------------------------------------------

    def _connect(self) -> Any:
        url = self.urls[self._at]
        coord = coordination.get_coordinator(driver_url(url, self.lease), self.member.encode())
        coord.start(start_heart=False)
        if self.observer:
            return coord
        try:
            self._enter(coord)
        except BaseException:
            _stop(coord)
            raise
        log.info("fleet_connected", url=url, group=self.group, member=self.member)
        return coord

    def _capabilities(self) -> bytes:
        doc = {"serves": list(self.serves), "heartbeat": self.clock().isoformat(),
               "jobs": self._jobs}  # fmt: skip
        return json.dumps(doc).encode()

    def _enter(self, coord: Any) -> None:
        """Join the group on `coord`'s lease (or move this member's key onto it)."""
        group = self.group.encode()
        with contextlib.suppress(coordination.GroupAlreadyExist):
            coord.create_group(group).get()
        try:
            coord.join_group(group, self._capabilities()).get()
        except coordination.MemberAlreadyExist:
            coord.update_capabilities(group, self._capabilities()).get()

    def call(self, op: Callable[[Any], T]) -> T:
        """`op(coordinator)` on the current URL, then on each other URL; CoordinationError
        when none answers."""
        with self._guard:
            errors: list[str] = []
            for _ in range(len(self.urls)):
                try:
                    if self._coord is None:
                        self._coord = self._connect()
                    return op(self._coord)
                except _FAILURES as exc:
                    why = str(exc) or type(exc).__name__
                    errors.append(f"{self.urls[self._at]}: {why}")
                    log.warning("fleet_url_failed", url=self.urls[self._at], error=why)
                    if self._coord is not None:
                        _stop(self._coord)
                        self._coord = None
                    self._at = (self._at + 1) % len(self.urls)
            raise CoordinationError(
                f"the coordination service did not answer at any of its URLs ({'; '.join(errors)})"
            )

    # --- the port ----------------------------------------------------------------------

    def join(self) -> None:
        self.call(self._enter)

    def heartbeat(self, jobs: int) -> None:
        self._jobs = jobs

        def beat(coord: Any) -> None:
            coord.heartbeat()
            try:
                coord.update_capabilities(self.group.encode(), self._capabilities()).get()
            except coordination.MemberNotJoined:  # the lease had run out: join again
                self._enter(coord)

        self.call(beat)

    def members(self) -> list[Member]:
        found = self.call(lambda c: c.get_members_with_capabilities(self.group.encode()).get())
        return sorted((_member(k, v) for k, v in found.items()), key=lambda m: m.name)

    def lock(self, name: str) -> ToozLock:
        return ToozLock(self, f"recoveryd/{self.group}/{name}")

    def _record_key(self, name: str) -> str:
        return f"recoveryd/{self.group}/done/{name}"

    def record_slot(self, name: str, record: SlotRecord, ttl: float) -> None:
        doc = {"result": record.result, "member": record.member, "run": record.run,
               "ended": record.ended.isoformat() if record.ended else None}  # fmt: skip

        def put(coord: Any) -> None:
            lease = coord.client.lease(max(1, math.ceil(ttl)))
            coord.client.put(self._record_key(name), json.dumps(doc), lease=lease)

        self.call(put)

    def slot_record(self, name: str) -> SlotRecord | None:
        found = self.call(lambda c: c.client.get(self._record_key(name)))
        return _record(found[0]) if found else None

    def leave(self) -> None:
        with self._guard:
            if self._coord is None:
                return
            try:
                if not self.observer:
                    self._coord.leave_group(self.group.encode()).get()
            except _FAILURES as exc:
                log.warning("fleet_leave_failed", error=str(exc))
            _stop(self._coord)
            self._coord = None


def _member(name: bytes, caps: Any) -> Member:
    """A Member from its key and capabilities (as this module writes them)."""
    doc: dict[str, Any] = {}
    if isinstance(caps, bytes | str):
        try:
            loaded = json.loads(caps)
        except ValueError:
            loaded = {}
        doc = loaded if isinstance(loaded, dict) else {}
    beat = doc.get("heartbeat")
    try:
        when = datetime.fromisoformat(beat) if isinstance(beat, str) else None
    except ValueError:
        when = None
    serves = tuple(str(s) for s in doc.get("serves") or () if isinstance(s, str))
    jobs = doc.get("jobs")
    return Member(name.decode(), serves, when, jobs if isinstance(jobs, int) else 0)


def _record(raw: Any) -> SlotRecord:
    """A SlotRecord from its stored value (an unreadable one still counts as a run: the
    key exists only because a member wrote it at the end of a run)."""
    try:
        doc = json.loads(raw)
    except (TypeError, ValueError):
        doc = None
    if not isinstance(doc, dict):
        return SlotRecord("unknown", "unknown")
    ended = doc.get("ended")
    try:
        when = datetime.fromisoformat(ended) if isinstance(ended, str) else None
    except ValueError:
        when = None
    run = doc.get("run")
    return SlotRecord(str(doc.get("result") or "unknown"), str(doc.get("member") or "unknown"),
                      when, run if isinstance(run, int) else 1)  # fmt: skip


def _stop(coord: Any) -> None:
    try:
        coord.stop()
    except _FAILURES as exc:
        log.debug("fleet_stop_failed", error=str(exc))

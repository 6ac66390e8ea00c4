"""The IntegrityError of a stored object found damaged (or written in a form this version
cannot read), and the envelope header parse that raises it: one sentence naming the
snapshot (when known) and the object."""

from __future__ import annotations

from recoveryd.errors import IntegrityError
from recoveryd.repo import crypto


def integrity_error(name: str, snapshot: str | None, what: str) -> IntegrityError:
    where = f"snapshot {snapshot}: " if snapshot else ""
    return IntegrityError(
        f"{where}object {name} {what}; the stored data was changed or damaged "
        "(restore from another target or an older snapshot)",
        snapshot=snapshot,
        obj=name,
    )


def unreadable_error(name: str, snapshot: str | None, what: str) -> IntegrityError:
    """An object that authenticates but that this version cannot read (a newer writer's):
    not damage, so no advice to restore from elsewhere."""
    where = f"snapshot {snapshot}: " if snapshot else ""
    return IntegrityError(
        f"{where}object {name} cannot be read: {what}", snapshot=snapshot, obj=name
    )


def parse_header(blob: bytes, name: str, snapshot: str | None) -> crypto.Header:
    try:
        return crypto.parse_header(blob)
    except crypto.EnvelopeError as exc:
        raise integrity_error(name, snapshot, f"is not a valid envelope ({exc})") from None

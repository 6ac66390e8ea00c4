"""Approvals of destructive steps: signed by configured approvers, checked by the runner.

The runner creates `state_dir/drills/RUN_ID/approvals/` (sticky and
world-writable, like /tmp, so that approvers who can reach it drop their
approval there) and `waiting.json` naming the run, the playbook's SHA-256, the
operator and how many approvals it waits for. `recoveryd drill approve RUN_ID
--key FILE` signs the run id and the playbook's hash with the approver's
Ed25519 key (`signing.py`) and writes `NAME.approval` there, or with `--out`
to a file handed over by any channel and placed with `drill approve --import`.

The runner counts an approval only when its signature is valid for the public
key the configuration gives that approver, it names this run and this
playbook's hash, and the approver is neither the operator nor counted already.
Who wrote the file, its owner and the environment (`SUDO_USER`) do not matter.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recoveryd.config import LoadedConfig
from recoveryd.drills import signing
from recoveryd.drills.journal import run_dir
from recoveryd.errors import RefusedError, UsageError

POLL = 0.2


class NoLongerWantedError(Exception):
    """The run waiting for approvals is no longer wanted (its governor level was left)."""


SUFFIX = ".approval"


FLEET_MEMBER_ENV = "RECOVERYD_FLEET_MEMBER"
"""Set by a daemon in fleet mode to its member name (for its runs and their children)."""


def current_user() -> str:
    """The person behind this process: `$SUDO_USER` under sudo, else the effective user.

    Only the name shown as the run's operator; approvals never trust it. A fleet daemon
    names its member too (`recoveryd (fleet member core-1)`), so a report says which
    member ran the drill."""
    sudo = os.environ.get("SUDO_USER")
    user = sudo if os.geteuid() == 0 and sudo else pwd.getpwuid(os.geteuid()).pw_name
    member = os.environ.get(FLEET_MEMBER_ENV)
    return f"{user} (fleet member {member})" if member else user


def operator_names() -> frozenset[str]:
    """Every name the person running a drill goes by here (effective and real user, and the
    sudo user): none of them may approve the run."""
    names = {current_user()}
    for uid in (os.geteuid(), os.getuid()):
        with contextlib.suppress(KeyError):
            names.add(pwd.getpwuid(uid).pw_name)
    return frozenset(names)


def approver_keys(cfg: LoadedConfig | None) -> dict[str, Ed25519PublicKey]:
    """The public key of every configured approver; ConfigError (exit 2) naming the key."""
    if cfg is None:
        return {}
    keys = {}
    for name, approver in cfg.config.approvers.items():
        where: tuple[str, ...] = ("approvers", name, "public_key")
        line = approver.public_key
        if approver.public_key_file is not None:
            where = ("approvers", name, "public_key_file")
            path = cfg.resolve_path(approver.public_key_file)
            try:
                line = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise cfg.document.error(
                    where, f"cannot read {path} ({exc.strerror}); give the approver's .pub file"
                ) from None
        try:
            keys[name] = signing.parse_public_line(line or "")[0]
        except ValueError as exc:
            raise cfg.document.error(where, f"{exc}; paste the approver's .pub line") from None
    return keys


# --- the approver's side


def _waiting(state_dir: Path, run_id: str) -> dict[str, object] | None:
    try:
        info = json.loads((run_dir(state_dir, run_id) / "waiting.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def approve(
    state_dir: Path,
    run_id: str,
    key_file: Path,
    *,
    name: str | None = None,
    out: Path | None = None,
    playbook_sha256: str | None = None,
    keys: dict[str, Ed25519PublicKey] | None = None,
) -> tuple[str, Path]:
    """Sign an approval of `run_id` with the key in `key_file` and write it into the run's
    approvals folder, or to `out`; returns the approver's name and the file written.

    The playbook's hash comes from the waiting run (or `playbook_sha256` when the run cannot
    be read from here). RefusedError (exit 5) when the key is not the configured key of the
    approver named, or the approver already approved."""
    key, key_name = signing.load_private(key_file)
    who = name or key_name
    known = (keys or {}).get(who)
    if keys and known is None:
        raise RefusedError(f"{who} is not a configured approver; see `approvers:` in the config")
    if known is not None and signing.public_line(known, who) != signing.public_line(
        key.public_key(), who
    ):
        raise RefusedError(f"the key in {key_file} is not the key configured for approver {who}")
    waiting = _waiting(state_dir, run_id)
    if waiting is not None and who == waiting.get("operator"):
        raise RefusedError(
            f"{who} started drill run {run_id} and cannot approve it; ask another person"
        )
    sha = playbook_sha256 or (str(waiting.get("playbook_sha256", "")) if waiting else "")
    if not sha:
        raise UsageError(
            f"drill run {run_id} is not waiting for approval here; to approve it from another "
            "machine, give --playbook-sha256 (printed by the run) and --out FILE"
        )
    approval = signing.sign(key, who, run_id, sha)
    target = out or run_dir(state_dir, run_id) / "approvals" / f"{who}{SUFFIX}"
    _write_new(target, approval.to_json(), who, run_id)
    return who, target


def import_approval(state_dir: Path, source: Path) -> tuple[str, Path]:
    """Place a handed-over approval into the approvals folder of the run it names."""
    try:
        approval = signing.read_approval(source.read_bytes())
    except OSError as exc:
        raise UsageError(f"--import {source}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(f"--import {source}: {exc}") from None
    folder = run_dir(state_dir, approval.run_id) / "approvals"
    if not folder.is_dir():
        raise UsageError(
            f"--import {source}: drill run {approval.run_id} is not waiting for approval in "
            f"{state_dir}; see `recoveryd drill list`"
        )
    target = folder / f"{approval.approver}{SUFFIX}"
    _write_new(target, approval.to_json(), approval.approver, approval.run_id)
    return approval.approver, target


def _write_new(target: Path, text: str, who: str, run_id: str) -> None:
    """Write `target` whole or not at all (the runner never reads half an approval), never
    over an existing file; a file of that name that is not this approval (anyone may write
    in the folder) does not block it."""
    if _same_approval(target, who, run_id):
        raise RefusedError(
            f"{who} already approved drill run {run_id}; the next approval must come "
            "from another person"
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{who}.", suffix=".tmp")
    except OSError as exc:
        raise RefusedError(
            f"cannot write the approval of {who} in {target.parent} ({exc.strerror}); write "
            "it with --out FILE and have it placed with `drill approve --import FILE`"
        ) from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        Path(tmp).chmod(0o644)
        for n in range(1, 100):
            candidate = target if n == 1 else target.with_name(f"{who}-{n}{SUFFIX}")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, candidate)
                return
    finally:
        Path(tmp).unlink(missing_ok=True)
    raise RefusedError(f"too many files named after {who} in {target.parent}")


def _same_approval(target: Path, who: str, run_id: str) -> bool:
    try:
        found = signing.read_approval(target.read_bytes())
    except (OSError, ValueError):
        return False
    return found.approver == who and found.run_id == run_id


# --- the runner's side


@dataclass
class ApprovalBox:
    """Counts the valid signed approvals of one run."""

    directory: Path
    operator: str
    on_approval: Callable[[str], None]
    run_id: str = ""
    playbook_sha256: str = ""
    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    operators: frozenset[str] = frozenset()
    on_rejected: Callable[[str, str], None] = lambda name, why: None
    seen: list[str] = field(default_factory=list)
    _judged: set[str] = field(default_factory=set)

    def open(self, required: int) -> None:
        folder = self.directory / "approvals"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o1777)
        self.directory.chmod(0o755)
        with contextlib.suppress(OSError):
            self.directory.parent.chmod(0o755)
        waiting = {
            "run_id": self.run_id,
            "playbook_sha256": self.playbook_sha256,
            "operator": self.operator,
            "required": required,
            "approvers": sorted(set(self.keys) - self._excluded()),
        }
        (self.directory / "waiting.json").write_text(json.dumps(waiting))

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "waiting.json").unlink()

    def _excluded(self) -> frozenset[str]:
        return self.operators | {self.operator}

    def _valid(self) -> Iterable[str]:
        folder = self.directory / "approvals"
        for entry in sorted(folder.glob(f"*{SUFFIX}")):
            if entry.name in self._judged:
                continue
            self._judged.add(entry.name)
            who, problem = self._judge(entry)
            if problem is None:
                yield who
            else:
                self.on_rejected(entry.name, problem)

    def _judge(self, entry: Path) -> tuple[str, str | None]:
        """The approver named and, when the approval does not count, why."""
        try:
            if not entry.is_file() or entry.is_symlink():
                return "", "not a regular file"
            approval = signing.read_approval(entry.read_bytes())
        except (OSError, ValueError) as exc:
            return "", str(exc)
        who = approval.approver
        key = self.keys.get(who)
        problem = None
        if key is None:
            problem = f"{who} is not a configured approver"
        elif approval.run_id != self.run_id:
            problem = f"signed for another run ({approval.run_id})"
        elif approval.playbook_sha256 != self.playbook_sha256:
            problem = "signed for another version of the playbook"
        elif not signing.check(approval, key):
            problem = f"the signature is not {who}'s"
        elif who in self._excluded():
            problem = f"{who} started the run and cannot approve it"
        elif who in self.seen:
            problem = f"{who} approved already"
        return who, problem

    def wait_for(
        self,
        count: int,
        timeout: float,
        cancel: threading.Event,
        wanted: Callable[[], bool] = lambda: True,
    ) -> list[str]:
        """Block until `count` approvers other than the operator approved (cumulative per run).

        TimeoutError past `timeout`, InterruptedError once `cancel` is set, NoLongerWantedError
        once `wanted()` is false (the reason for the run has gone meanwhile)."""
        self.open(count)
        deadline = time.monotonic() + timeout
        try:
            while True:
                for user in self._valid():
                    if user not in self.seen:
                        self.seen.append(user)
                        self.on_approval(user)
                if len(self.seen) >= count:
                    return list(self.seen)
                if cancel.is_set():
                    raise InterruptedError
                if not wanted():
                    raise NoLongerWantedError
                if time.monotonic() > deadline:
                    raise TimeoutError
                cancel.wait(POLL)
        finally:
            self.close()

"""Log anchors in the stores: written after commands and by the daemon, checked by
`audit verify`, `drill list --verify` and `incident list` (see `recoveryd.anchor`).

Every target that holds a repository gets the same anchor object, under Object Lock
(the repository's retention) where the store enforces it. A target that cannot be
reached is skipped and logged: the records it misses are reported as "not yet
anchored" until the next anchor reaches it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from recoveryd.anchor import (
    ANCHOR_PREFIX,
    Anchor,
    AnchorError,
    Finding,
    Head,
    anchor_key,
    compare,
    local_heads,
    local_logs,
    object_name,
    parse,
    seal,
)
from recoveryd.app import wiring
from recoveryd.config import LoadedConfig
from recoveryd.errors import RecoverydError
from recoveryd.observe import get_logger
from recoveryd.state import utcnow

log = get_logger(__name__)


def write_anchors(cfg: LoadedConfig) -> list[str]:
    """Anchor the heads of every chained log in every target holding a repository;
    returns the targets written. Never raises for a store or key problem (logged)."""
    state_dir = cfg.resolve_path(cfg.config.state_dir)
    heads = local_heads(state_dir) if state_dir.is_dir() else {}
    if not heads:
        return []
    try:
        key = anchor_key(wiring.master_key(cfg).secret)
    except RecoverydError as exc:
        log.info("anchor_not_written", reason=exc.message)
        return []
    _keep_tampered(check_logs(cfg, lambda _name: True), heads)
    host, now = socket.gethostname(), utcnow()
    name, blob = object_name(host, now, heads), seal(key, host, now, heads)
    written: list[str] = []
    for target in cfg.config.targets:
        try:
            repo = wiring.open_repository(cfg, target)
        except RecoverydError as exc:
            log.info("anchor_not_written", target=target, reason=exc.message)
            continue
        try:
            repo.store.put(name, blob, retention=repo.retention())
            written.append(target)
        except RecoverydError as exc:
            log.info("anchor_not_written", target=target, reason=exc.message)
        finally:
            repo.store.close()
    return written


def _keep_tampered(previous: AnchorCheck, heads: dict[str, Head]) -> None:
    """A log found deleted, truncated or rewritten keeps its anchored head in the next
    anchor too: writing the new head would launder the change."""
    if previous.anchor is None:
        return
    for finding in previous.findings:
        if finding.tampered:
            heads[finding.log] = previous.anchor.logs[finding.log]
            log.warning("anchor_kept_for_tampered_log", log=finding.log, finding=finding.text)


@dataclass
class AnchorCheck:
    """What the anchors say about the local logs: findings per log, forged anchors."""

    anchor: Anchor | None = None
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # anchors that are not authentic

    @property
    def tampered(self) -> bool:
        return bool(self.problems) or any(f.tampered for f in self.findings)

    def lines(self) -> list[str]:
        return [*self.problems, *(f.text for f in self.findings)]


def check_logs(cfg: LoadedConfig, wanted: Callable[[str], bool]) -> AnchorCheck:
    """Compare the local logs `wanted` selects (by name relative to `state_dir`:
    `audit.jsonl`, `drills/RUN/journal.jsonl`, `incidents/INC-....jsonl`) with the
    newest authentic anchor of this host in any reachable target."""
    result = AnchorCheck()
    try:
        key = anchor_key(wiring.master_key(cfg).secret)
    except RecoverydError:
        return result  # no key, no anchors to read: the local check stands alone
    host = socket.gethostname()
    for target in cfg.config.targets:
        newest = _newest(cfg, target, key, host, result.problems)
        if newest is not None and (result.anchor is None or newest.time > result.anchor.time):
            result.anchor = newest
    if result.anchor is None:
        return result
    state_dir = cfg.resolve_path(cfg.config.state_dir)
    names = {n for n in result.anchor.logs if wanted(n)}
    if state_dir.is_dir():
        names |= {p.as_posix() for p in local_logs(state_dir) if wanted(p.as_posix())}
    result.findings = compare(result.anchor, state_dir, sorted(names))
    return result


def _newest(
    cfg: LoadedConfig, target: str, key: bytes, host: str, problems: list[str]
) -> Anchor | None:
    try:
        store = wiring.open_store(cfg, target)
    except RecoverydError as exc:
        log.info("anchors_unreadable", target=target, reason=exc.message)
        return None
    try:
        names = sorted(o.key for o in store.list(f"{ANCHOR_PREFIX}{host}/"))
        for name in reversed(names):
            try:
                return parse(key, name, store.get(name))
            except AnchorError as exc:
                problems.append(f"target {target}: {exc}")
        return None
    except RecoverydError as exc:
        log.info("anchors_unreadable", target=target, reason=exc.message)
        return None
    finally:
        store.close()

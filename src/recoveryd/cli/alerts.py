"""Alerts raised by commands run outside the daemon (the daemon alerts from its jobs)."""

from __future__ import annotations

from collections.abc import Sequence

from recoveryd.config import LoadedConfig
from recoveryd.model import BackupResult


def under_replicated_alert_text(result: BackupResult) -> str:
    """What an operator reads: which snapshot, where it is, where it is missing and why."""
    missing = "; ".join(f"{m.target}: {m.error}" for m in result.missing_targets)
    return (
        f"Snapshot {result.id} of {result.source} was committed to "
        f"{', '.join(result.targets)} but not to every target ({missing}). The daemon "
        "copies it there when the target answers again (or run `recoveryd copy`)."
    )


def alert_under_replicated(cfg: LoadedConfig, results: Sequence[BackupResult]) -> None:
    """Spool an `under_replicated` alert per degraded snapshot and try to deliver it now;
    what is not delivered stays in the spool for the daemon to retry."""
    degraded = [r for r in results if r.degraded]
    if not degraded or not cfg.config.notify:
        return
    from recoveryd.daemon.notify import Alert, Notifier

    notifier = Notifier(cfg.config.notify, cfg.resolve_path(cfg.config.state_dir) / "spool")
    for r in degraded:
        missing = ", ".join(m.target for m in r.missing_targets)
        notifier.notify(
            Alert(
                "under_replicated",
                f"backup of {r.source} is missing on {missing}",
                under_replicated_alert_text(r),
                source=r.source,
                details={"snapshot": r.id, "missing": [m.target for m in r.missing_targets]},
            )
        )
    notifier.flush()

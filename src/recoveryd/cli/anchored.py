"""What the anchors in the stores say about local logs, for `audit verify`,
`drill list --verify` and `incident list`: records not yet anchored are a warning;
a log deleted, truncated or rewritten since its anchor (or a forged anchor) is exit 3."""

from __future__ import annotations

from collections.abc import Callable

from recoveryd.cli import output
from recoveryd.config import LoadedConfig
from recoveryd.errors import IntegrityError


def check(cfg: LoadedConfig | None, wanted: Callable[[str], bool], what: str) -> None:
    """Warn about unanchored records; IntegrityError (exit 3) naming the first tampering."""
    if cfg is None:
        return
    from recoveryd.app.anchors import check_logs

    result = check_logs(cfg, wanted)
    for finding in result.findings:
        if not finding.tampered:
            output.warn(finding.text)
    if result.tampered:
        first = result.lines()[0]
        for extra in [line for line in result.lines() if line != first]:
            output.warn(extra)
        raise IntegrityError(
            f"{what}: {first} (anchored off the host); keep the files as evidence and investigate"
        )

"""Secret files: how passwords reach dump tools without touching argv."""

from __future__ import annotations

from pathlib import Path

from recoveryd.sources.local import LocalRunner
from recoveryd.sources.procstream import SecretFile, scrub


def test_local_secret_file_is_private_and_removed(tmp_path: Path) -> None:
    """The file holds exactly the content, is readable by its owner only (0600), and
    remove() deletes it, idempotently."""
    secret = SecretFile(LocalRunner(), "*:*:*:*:pw\n", suffix=".pgpass", tmp_dir=tmp_path)
    path = Path(secret.path)
    assert path.parent == tmp_path and path.name.endswith(".pgpass")
    assert path.read_text() == "*:*:*:*:pw\n"
    assert path.stat().st_mode & 0o777 == 0o600
    secret.remove()
    secret.remove()
    assert not path.exists()


def test_scrub_hides_every_secret() -> None:
    """Every occurrence of every secret is replaced; empty secrets are ignored."""
    assert scrub("a pw b pw c tok", ["pw", None, "", "tok"]) == "a *** b *** c ***"

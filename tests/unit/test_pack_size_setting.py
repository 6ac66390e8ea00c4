"""`targets.NAME.pack_size` in recoveryd.yaml: validated with file, line and key; the size
a repository is created with (`recoveryd init`) and the size of every pack written
afterwards, while packs already stored keep theirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from recoveryd.app import wiring
from recoveryd.cli.main import main
from recoveryd.config import FilesystemTarget, load_config
from recoveryd.configtypes import DEFAULT_PACK_SIZE
from recoveryd.errors import ConfigError, ExitCode
from recoveryd.repo import Repository
from recoveryd.repo.repoconfig import DEFAULT_PACK_SIZE as FORMAT_DEFAULT
from recoveryd.repo.repoconfig import MAX_PACK_SIZE, MIN_PACK_SIZE
from recoveryd.stores.memory import MemoryStore
from tests.initrepo import init_repositories
from tests.unit.repo.helpers import SMALL, master, snapshot, text_data

CONFIG = """\
state_dir: ./state
encryption: {key_file: ./k}
targets:
  local:
    kind: filesystem
    path: ./store
    pack_size: PACK
"""


def _write(tmp_path: Path, pack: str) -> Path:
    conf = tmp_path / "recoveryd.yaml"
    conf.write_text(CONFIG.replace("PACK", pack))
    return conf


@pytest.mark.parametrize("value", ["1GiB", "1KiB", "big", "[1]"])
def test_a_bad_pack_size_names_file_line_key_and_range(tmp_path: Path, value: str) -> None:
    """A pack size outside 16 KiB-128 MiB, or not a size, is one exit-2 sentence naming
    the file, the line and the key."""
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, value))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'recoveryd.yaml'}:7: targets.local.pack_size: ")
    assert "16 KiB and 128 MiB" in message or "size" in message
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in message


def test_the_setting_matches_the_format() -> None:
    """The configuration's bounds and default are the repository format's (unset, the
    repository's own size; DEFAULT_PACK_SIZE for a new one)."""
    assert DEFAULT_PACK_SIZE == FORMAT_DEFAULT == 16 * 1024 * 1024
    target = FilesystemTarget(kind="filesystem", path="/x")
    assert target.pack_size is None
    assert FilesystemTarget(kind="filesystem", path="/x", pack_size=MIN_PACK_SIZE)
    assert FilesystemTarget(kind="filesystem", path="/x", pack_size=MAX_PACK_SIZE)


def test_init_records_the_setting_and_later_runs_follow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`recoveryd init` creates the repository with the configured pack size; once the
    setting is changed, the repository opened for the next run writes packs of the new
    size, and its stored config keeps the size it was created with."""
    monkeypatch.chdir(tmp_path)
    conf = _write(tmp_path, "64KiB")
    assert main(["--config", str(conf), "key", "generate"]) == 0
    init_repositories(conf)
    repo = wiring.open_repository(load_config(conf), "local")
    assert repo.config.pack_size == repo.pack_size == 64 * 1024
    repo.store.close()
    conf = _write(tmp_path, "32KiB")
    repo = wiring.open_repository(load_config(conf), "local")
    assert (repo.config.pack_size, repo.pack_size) == (64 * 1024, 32 * 1024)
    repo.store.close()


def test_packs_are_written_at_the_size_the_repository_was_opened_with() -> None:
    """The same data stored with a smaller pack size than the repository was created with
    goes into more, smaller packs."""
    counts = []
    for size in (128 * 1024, 32 * 1024):
        store = MemoryStore()
        Repository.init(store, master(), chunker_params=SMALL, pack_size=128 * 1024)
        repo = Repository.open(store, master(), pack_size=size)
        snapshot(repo, text_data(20_000))
        packs = [len(v) for k, v in store.objects.items() if k.startswith("packs/")]
        assert max(packs) <= size + SMALL.max_size
        counts.append(len(packs))
    assert counts[1] > 2 * counts[0]


def test_a_repository_keeps_its_own_pack_size_when_the_configuration_sets_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `pack_size` in the configuration, `recoveryd init` creates 16 MiB packs and a
    repository created with another size (by an older configuration, or another tool) is
    written at the size it records, not silently at 16 MiB."""
    monkeypatch.chdir(tmp_path)
    conf = tmp_path / "recoveryd.yaml"
    conf.write_text(CONFIG.replace("    pack_size: PACK\n", ""))
    assert main(["--config", str(conf), "key", "generate"]) == 0
    init_repositories(conf)
    repo = wiring.open_repository(load_config(conf), "local")
    assert repo.config.pack_size == repo.pack_size == DEFAULT_PACK_SIZE
    repo.store.close()

    other = tmp_path / "other"
    other.mkdir()
    (other / "recoveryd.yaml").write_text(CONFIG.replace("PACK", "64KiB"))
    (other / "k").write_bytes((tmp_path / "k").read_bytes())
    (other / "k").chmod(0o600)
    init_repositories(other / "recoveryd.yaml")
    (other / "recoveryd.yaml").write_text(CONFIG.replace("    pack_size: PACK\n", ""))
    repo = wiring.open_repository(load_config(other / "recoveryd.yaml"), "local")
    assert (repo.config.pack_size, repo.pack_size) == (64 * 1024, 64 * 1024)
    repo.store.close()

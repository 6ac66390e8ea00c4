"""Precise verdicts: a damaged manifest is named and every other snapshot still listed
(exit 3 at the end); another repository's key is told apart (exit 2, "does not open this
repository") from a key object whose bytes were changed (tampering, exit 3). Filesystem
repositories driven through the CLI."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from recoveryd.repo.crypto import KEY_ID_OFFSET
from tests.e2e.conftest import Deployment, fs_target


def two_snapshots(deployment: Deployment, tmp_path: Path) -> tuple[Path, list[str]]:
    """A filesystem repository with two snapshots of a SQLite file; (store, ids)."""
    db = tmp_path / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
    conn.close()
    store = tmp_path / "store"
    deployment.configure(
        targets={"local": fs_target(store)},
        sources={"registry": {"kind": "sqlite", "path": str(db), "targets": ["local"]}},
    )
    first = deployment.backup()[0]["id"]
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO t VALUES ('second')")
    conn.close()
    second = deployment.backup()[0]["id"]
    return store, [first, second]


def flip_byte(path: Path, pos: int) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.integration
@pytest.mark.parametrize("json_output", [False, True], ids=["table", "json"])
def test_a_damaged_manifest_is_named_and_the_rest_still_listed(
    deployment: Deployment, tmp_path: Path, json_output: bool
) -> None:
    """One damaged manifest: `snapshots` names its object on stderr, still lists the other
    snapshot (table or JSON document), and exits 3 at the end."""
    store, (bad, good) = two_snapshots(deployment, tmp_path)
    flip_byte(store / "snapshots" / bad, 40)
    res = deployment.cli(*(["--json"] if json_output else []), "snapshots")
    assert res.code == 3, res.err
    assert "Traceback" not in res.err
    assert f"object snapshots/{bad}" in res.err
    assert "target local" in res.err
    if json_output:
        assert [s["id"] for s in res.data] == [good]
    else:
        assert good[:12] in res.out
        assert bad[:12] not in res.out


@pytest.mark.integration
def test_another_repositorys_key_is_not_snapshot_not_found(
    deployment: Deployment, tmp_path: Path
) -> None:
    """With the key of another repository, `restore` and `snapshots` say the key does not open
    this repository (exit 2), not that the snapshot does not exist."""
    _, (sid, _) = two_snapshots(deployment, tmp_path)
    shutil.move(deployment.key_file, tmp_path / "right.key")
    deployment.cli("key", "generate").expect(0)
    for args in (("restore", sid, "--to", str(tmp_path / "out.db")), ("snapshots",)):
        res = deployment.cli(*args)
        assert res.code == 2, (args, res.err)
        assert "does not open this repository" in res.err
        assert "not found" not in res.err
    assert not (tmp_path / "out.db").exists()


@pytest.mark.integration
@pytest.mark.parametrize("pos", [KEY_ID_OFFSET, KEY_ID_OFFSET + 7], ids=["first", "last"])
def test_a_flipped_byte_in_a_key_objects_master_id_is_tampering(
    deployment: Deployment, tmp_path: Path, pos: int
) -> None:
    """A changed byte in the master key id of a key object's header is tampering (exit 3,
    naming the key object), not "wrong key" (exit 2): the object still opens with this
    master key once its id is put back."""
    store, (sid, _) = two_snapshots(deployment, tmp_path)
    key_obj = next((store / "keys").iterdir())
    flip_byte(key_obj, pos)
    for args in (("restore", sid, "--to", str(tmp_path / "out.db")), ("snapshots",)):
        res = deployment.cli(*args)
        assert res.code == 3, (args, res.err)
        assert f"key object keys/{key_obj.name} was altered" in res.err
    assert not (tmp_path / "out.db").exists()


@pytest.mark.integration
def test_a_repository_without_key_objects_is_damaged_not_a_wrong_key(
    deployment: Deployment, tmp_path: Path
) -> None:
    """With every key object deleted no master key could open the repository: that is
    damage (exit 3, naming keys/), not a wrong key (exit 2)."""
    store, _ = two_snapshots(deployment, tmp_path)
    for key_obj in (store / "keys").iterdir():
        key_obj.unlink()
    res = deployment.cli("snapshots")
    assert res.code == 3, res.err
    assert "holds no key objects" in res.err

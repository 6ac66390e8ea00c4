"""Signed approvals of destructive steps: only valid signatures of distinct configured
approvers other than the operator count; names, file owners and `SUDO_USER` do not."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recoveryd.config import LoadedConfig, load_config
from recoveryd.drills import signing
from recoveryd.drills.api import DrillResult, run_playbook
from recoveryd.drills.approvals import current_user
from recoveryd.errors import ConfigError, ExitCode, RefusedError
from tests.unit.drills.helpers import cli, records, write_playbook

BOOK = """\
apiVersion: recoveryd/v1
kind: Drill
name: signed
{approvals}
steps:
  - {{name: destructive change, run: [touch, "{marker}"], destructive: true}}
"""


def _keys(tmp_path: Path, *names: str) -> Path:
    keys = tmp_path / "keys"
    for name in names:
        signing.generate(name, keys)
    return keys


def _config(tmp_path: Path, keys: Path, approvers: tuple[str, ...], policy: int = 0) -> Path:
    lines = "\n".join(f"  {n}: {{public_key_file: {keys / (n + '.pub')}}}" for n in approvers)
    path = tmp_path / "recoveryd.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            state_dir: {tmp_path / "state"}
            encryption: {{key_file: ./master.key}}
            targets: {{local: {{kind: filesystem, path: ./store}}}}
            approval_policy: {{destructive_min: {policy}}}
            approvers:
            """
        )
        + lines
        + "\n"
    )
    return path


def _run(
    tmp_path: Path,
    cfg: LoadedConfig,
    when_asked: Callable[[str, str], None],
    approvals: str = "",
) -> DrillResult:
    """Run the playbook; `when_asked(run_id, playbook_sha256)` runs when approval is requested
    (the runner waits for approvals right after)."""
    book = write_playbook(tmp_path, BOOK.format(approvals=approvals, marker=tmp_path / "destroyed"))

    def listener(rec: dict[str, Any]) -> None:
        if rec["type"] == "event" and rec["kind"] == "approval_requested":
            when_asked(rec["data"]["command"].split()[3], rec["data"]["playbook_sha256"])

    return run_playbook(cfg, book, state_dir=tmp_path / "state", listener=listener)


def _drop(tmp_path: Path, run_id: str, approval: signing.Approval, name: str) -> None:
    folder = tmp_path / "state" / "drills" / run_id / "approvals"
    (folder / f"{name}.approval").write_text(approval.to_json())


def _sign(
    keys: Path, name: str, run_id: str, sha: str, *, as_: str | None = None
) -> signing.Approval:
    key, _ = signing.load_private(keys / f"{name}.key")
    return signing.sign(key, as_ or name, run_id, sha)


ONE = "approvals: {required: 1, timeout: 1s}"


def test_two_distinct_approvers_pass_under_the_configured_policy(tmp_path: Path) -> None:
    """`approval_policy: {destructive_min: 2}` applies to a playbook that asks for no approval;
    alice and bob sign with `drill approve --key`; the same person twice is refused."""
    keys = _keys(tmp_path, "alice", "bob")
    cfg = load_config(_config(tmp_path, keys, ("alice", "bob"), policy=2))
    seen: dict[str, Any] = {}

    def approve(run_id: str, sha: str) -> None:
        base = ("--config", str(cfg.path), "drill", "approve", run_id)
        seen["alice"] = cli(*base, "--key", str(keys / "alice.key"))
        seen["again"] = cli(*base, "--key", str(keys / "alice.key"))
        seen["bob"] = cli(*base, "--key", str(keys / "bob.key"))

    result = _run(tmp_path, cfg, approve)
    assert seen["alice"].returncode == 0, seen["alice"].stderr
    assert seen["again"].returncode == int(ExitCode.REFUSED)
    assert "already approved" in seen["again"].stderr
    assert seen["bob"].returncode == 0, seen["bob"].stderr
    assert result.status == "passed", result.error
    assert (tmp_path / "destroyed").exists()
    approvals = records(result.journal, "approval")
    assert [r["user"] for r in approvals] == ["alice", "bob"]
    assert all(r["key"].startswith("SHA256:") for r in approvals)  # whose key signed


def test_sudo_user_forgery_does_not_approve(tmp_path: Path) -> None:
    """Root claiming to be alice through `SUDO_USER` has no alice key: `drill approve` with
    another key refuses, and a file named after alice but signed by mallory does not count;
    the approval timeout exits 5."""
    keys = _keys(tmp_path, "alice", "mallory")
    cfg = load_config(_config(tmp_path, keys, ("alice",)))
    seen: dict[str, Any] = {}

    def forge(run_id: str, sha: str) -> None:
        seen["cli"] = cli(
            "--config", str(cfg.path), "drill", "approve", run_id,
            "--key", str(keys / "mallory.key"), "--as", "alice",
            env={"SUDO_USER": "alice"},
        )  # fmt: skip
        _drop(tmp_path, run_id, _sign(keys, "mallory", run_id, sha, as_="alice"), "alice")

    result = _run(tmp_path, cfg, forge, ONE)
    assert seen["cli"].returncode == int(ExitCode.REFUSED)
    assert "not the key configured for approver alice" in seen["cli"].stderr
    assert result.exit_code == ExitCode.REFUSED and not (tmp_path / "destroyed").exists()
    assert records(result.journal, "approval") == []
    (rejected,) = [r for r in records(result.journal, "event") if r["kind"] == "approval_rejected"]
    assert "signature is not alice's" in rejected["data"]["why"]


@pytest.mark.parametrize("other", ["run_id", "playbook_sha256"])
def test_a_signature_over_another_run_or_playbook_does_not_count(
    tmp_path: Path, other: str
) -> None:
    """Alice's valid signature of another run id, or of another version of the playbook,
    is not an approval of this run."""
    keys = _keys(tmp_path, "alice")
    cfg = load_config(_config(tmp_path, keys, ("alice",)))

    def replay(run_id: str, sha: str) -> None:
        fields = {"run_id": run_id, "playbook_sha256": sha, other: "0" * 64}
        _drop(
            tmp_path,
            run_id,
            _sign(keys, "alice", fields["run_id"], fields["playbook_sha256"]),
            "alice",
        )

    result = _run(tmp_path, cfg, replay, ONE)
    assert result.exit_code == ExitCode.REFUSED
    assert records(result.journal, "approval") == []


def test_a_tampered_approval_does_not_count(tmp_path: Path) -> None:
    """One changed field of a signed approval (here the time it was signed) voids it."""
    keys = _keys(tmp_path, "alice")
    cfg = load_config(_config(tmp_path, keys, ("alice",)))

    def tamper(run_id: str, sha: str) -> None:
        good = _sign(keys, "alice", run_id, sha)
        _drop(
            tmp_path,
            run_id,
            good.model_copy(update={"signed_at": "2020-01-01T00:00:00.000Z"}),
            "alice",
        )

    result = _run(tmp_path, cfg, tamper, ONE)
    assert result.exit_code == ExitCode.REFUSED
    assert records(result.journal, "approval") == []


def test_the_operator_cannot_approve_their_own_run(tmp_path: Path) -> None:
    """An approver who is the person running the drill is refused by `drill approve` and not
    counted by the runner; another approver's signature then lets the run go on."""
    me = current_user()
    keys = _keys(tmp_path, me, "alice")
    cfg = load_config(_config(tmp_path, keys, (me, "alice")))
    seen: dict[str, Any] = {}

    def approve(run_id: str, sha: str) -> None:
        seen["cli"] = cli(
            "--config", str(cfg.path), "drill", "approve", run_id, "--key", str(keys / f"{me}.key")
        )  # fmt: skip
        _drop(tmp_path, run_id, _sign(keys, me, run_id, sha), f"{me}-again")
        _drop(tmp_path, run_id, _sign(keys, "alice", run_id, sha), "alice")

    result = _run(tmp_path, cfg, approve, ONE)
    assert seen["cli"].returncode == int(ExitCode.REFUSED)
    assert "cannot approve" in seen["cli"].stderr
    assert result.status == "passed", result.error
    assert [r["user"] for r in records(result.journal, "approval")] == ["alice"]


def test_too_few_approvers_other_than_the_operator_is_refused_before_anything(
    tmp_path: Path,
) -> None:
    """When the approvals needed can never come (only the operator is an approver), the run
    is refused (exit 5) before anything runs."""
    me = current_user()
    keys = _keys(tmp_path, me)
    cfg = load_config(_config(tmp_path, keys, (me,), policy=1))
    with pytest.raises(RefusedError, match="configured approver"):
        _run(tmp_path, cfg, lambda run_id, sha: None)
    assert not (tmp_path / "destroyed").exists()


def test_an_approval_handed_over_is_placed_with_import(tmp_path: Path) -> None:
    """`drill approve RUN --key FILE --out FILE` signs without touching the state directory;
    `drill approve --import FILE` places it, and the run counts it."""
    keys = _keys(tmp_path, "alice")
    cfg = load_config(_config(tmp_path, keys, ("alice",)))
    seen: dict[str, Any] = {}
    handed = tmp_path / "handed.approval"

    def hand_over(run_id: str, sha: str) -> None:
        seen["sign"] = cli(
            "drill", "--state-dir", str(tmp_path / "elsewhere"), "approve", run_id,
            "--key", str(keys / "alice.key"), "--playbook-sha256", sha, "--out", str(handed),
        )  # fmt: skip
        seen["import"] = cli("--config", str(cfg.path), "drill", "approve", "--import", str(handed))

    result = _run(tmp_path, cfg, hand_over, ONE)
    assert seen["sign"].returncode == 0, seen["sign"].stderr
    assert seen["import"].returncode == 0, seen["import"].stderr
    assert result.status == "passed", result.error


def test_keygen_writes_a_private_key_only_its_owner_reads_and_a_public_line(
    tmp_path: Path,
) -> None:
    """`approver keygen alice --out DIR --json` writes alice.key (0600) and alice.pub
    (`ed25519 <base64> alice`) and names both."""
    shown = cli("--json", "approver", "keygen", "alice", "--out", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert set(doc) == {"private_key", "public_key_file", "public_key"}
    assert stat.S_IMODE(os.stat(doc["private_key"]).st_mode) == 0o600
    line = Path(doc["public_key_file"]).read_text().strip()
    assert line == doc["public_key"] and line.startswith("ed25519 ") and line.endswith(" alice")
    again = cli("approver", "keygen", "alice", "--out", str(tmp_path))
    assert again.returncode == int(ExitCode.USAGE) and "exists" in again.stderr


def test_a_bad_public_key_in_the_configuration_names_its_line(tmp_path: Path) -> None:
    """A public key that is not an Ed25519 `.pub` line is a configuration error (exit 2)
    naming the file, the line and the key."""
    path = _config(tmp_path, tmp_path, ())
    path.write_text(path.read_text() + "  alice: {public_key: ssh-rsa AAAA alice}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert ":7:" in str(err.value) and "approvers.alice" in str(err.value)


def test_config_check_reads_every_approvers_key_file(tmp_path: Path) -> None:
    """`recoveryd config check` fails (exit 2) naming the approver whose key file is missing."""
    keys = _keys(tmp_path, "alice")
    path = _config(tmp_path, keys, ("alice",))
    (keys / "alice.pub").unlink()
    done = cli("--config", str(path), "config", "check")
    assert done.returncode == int(ExitCode.USAGE)
    assert "approvers.alice.public_key_file" in done.stderr and "cannot read" in done.stderr


def test_a_fleet_daemon_names_its_member_as_the_operator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In fleet mode the daemon sets its member name; the run's operator (and so its report)
    names the member beside the user. Approvals never use this name."""
    from recoveryd.drills.approvals import FLEET_MEMBER_ENV, current_user

    monkeypatch.delenv(FLEET_MEMBER_ENV, raising=False)
    plain = current_user()
    monkeypatch.setenv(FLEET_MEMBER_ENV, "east-2")
    assert current_user() == f"{plain} (fleet member east-2)"

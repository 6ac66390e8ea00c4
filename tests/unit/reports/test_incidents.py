"""Real incidents: recorded append-only with operator and time, closed once, reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from recoveryd.chain import HashChain
from recoveryd.cli.main import main
from recoveryd.errors import RefusedError
from recoveryd.incidents import IncidentNotFoundError, Incidents
from recoveryd.reports import load_report
from recoveryd.state import StateStore
from tests.unit.reports import sample

T0 = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)


def _clock(start: datetime = T0) -> Callable[[], datetime]:
    ticks = iter(start + timedelta(minutes=i) for i in range(100))
    return lambda: next(ticks)


def test_every_entry_records_operator_and_time_in_a_verified_chain(tmp_path: Path) -> None:
    """open, note, action and close each append one chained record naming who and when."""
    inc = Incidents(tmp_path, clock=_clock(), operator=lambda: "duty-wu")
    incident_id = inc.open("Registry database unreachable", severity="I")
    inc.note(incident_id, "Failover started")
    inc.action(incident_id, owner="DBA team", due=date(2026, 12, 1), text="Add a second standby")
    inc.close(incident_id, summary="Standby promoted")
    assert incident_id == "INC-20261123T080000Z"
    chain = HashChain(inc.path(incident_id))
    records = list(chain.records())
    assert [r["type"] for r in records] == ["opened", "note", "action", "closed"]
    assert {r["operator"] for r in records} == {"duty-wu"}
    assert records[1]["time"] == "2026-11-23T08:01:00.000Z"
    assert chain.verify().ok
    summary = inc.get(incident_id)
    assert summary.status == "closed" and summary.intact and summary.entries == 4


def test_two_incidents_in_the_same_second_get_distinct_ids(tmp_path: Path) -> None:
    """Ids never collide: the second one opened in the same second gets a suffix."""
    inc = Incidents(tmp_path, clock=lambda: T0, operator=lambda: "a")
    assert inc.open("one") == "INC-20261123T080000Z"
    assert inc.open("two") == "INC-20261123T080000Z-2"
    assert [i.title for i in inc.all()] == ["one", "two"]


def test_a_closed_incident_takes_no_more_entries(tmp_path: Path) -> None:
    """After close, notes and actions are refused (exit 5): the record is final."""
    inc = Incidents(tmp_path, clock=_clock(), operator=lambda: "a")
    incident_id = inc.open("x")
    inc.close(incident_id, summary="done")
    with pytest.raises(RefusedError, match="is closed"):
        inc.note(incident_id, "late")
    with pytest.raises(IncidentNotFoundError, match="no incident"):
        inc.note("INC-19990101T000000Z", "nothing")


def test_incident_lifecycle_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`incident open/note/action/close` then `report ID` give a report holding the entries and
    the shedding the daemon recorded while the incident was open."""
    config = tmp_path / "recoveryd.yaml"
    config.write_text(
        "state_dir: ./state\nencryption: {key_file: ./k}\n"
        "targets: {local: {kind: filesystem, path: ./store}}\n",
        encoding="utf-8",
    )
    base = ["--config", str(config)]
    assert main([*base, "incident", "open", "健康码网关崩溃", "--severity", "II"]) == 0
    incident_id = capsys.readouterr().out.strip()
    assert incident_id.startswith("INC-")
    store = StateStore(tmp_path / "state")
    store.record_event("shed_action", {"action": "essential-only", "requests_shed": 321})
    store.close()
    assert (
        main([*base, "incident", "note", incident_id, "proxy in essential mode; password=hunter22"])
        == 0
    )
    assert (
        main(
            [
                *base,
                "incident",
                "action",
                incident_id,
                "--owner",
                "vendor",
                "--due",
                "2026-12-01",
                "scale out",
            ]
        )
        == 0
    )
    assert (
        main([*base, "incident", "action", incident_id, "--owner", "v", "--due", "soon", "x"]) == 2
    )
    capsys.readouterr()
    assert main([*base, "--json", "incident", "close", incident_id, "--summary", "restored"]) == 0
    closed = json.loads(capsys.readouterr().out)
    assert closed["status"] == "closed" and closed["entries"] == 4 and closed["intact"] is True
    assert main([*base, "incident", "note", incident_id, "late"]) == 5
    capsys.readouterr()
    out = tmp_path / "r.md"
    assert (
        main([*base, "report", incident_id, "--format", "md", "--lang", "zh", "--out", str(out)])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    text = out.read_text(encoding="utf-8")
    assert "健康码网关崩溃" in text and "scale out" in text and "321" in text
    assert "hunter22" not in text and "已关闭" in text


def test_drills_and_failures_during_an_open_incident_join_its_timeline(tmp_path: Path) -> None:
    """A drill run and a failed job recorded while the incident was open appear in its
    report; those before it was opened do not."""
    sample.make_state_dir(tmp_path)  # drill at T0, failed copy at T0+70s, backups before
    start = sample.T0 - timedelta(minutes=1)
    inc = Incidents(tmp_path, clock=_clock(start), operator=lambda: "duty-wu")
    incident_id = inc.open("Population registry slow")
    inc.close(incident_id, summary="ok")  # one minute later: covers the drill's start
    report = load_report(tmp_path, incident_id, now=sample.NOW)
    kinds = {(e.kind, str(e.name)) for e in report.timeline}
    assert ("drill", "pg-primary-loss") in kinds
    drill = next(e for e in report.timeline if e.kind == "drill")
    assert drill.status == "failed"
    assert not any(e.kind == "run" and "backup" in str(e.name) for e in report.timeline)


def test_an_incident_record_edited_into_invalid_utf8_is_shown_as_altered(tmp_path: Path) -> None:
    """A byte edited into something that is not UTF-8 makes the incident show as not intact
    (and its report warn), instead of making `incident list` and `report` crash."""
    inc = Incidents(tmp_path, clock=_clock(), operator=lambda: "duty-wu")
    incident_id = inc.open("Registry database unreachable", severity="I")
    inc.note(incident_id, "Failover started")
    path = inc.path(incident_id)
    data = bytearray(path.read_bytes())
    data[data.index(b"Failover")] = 0xFF
    path.write_bytes(bytes(data))
    assert inc.get(incident_id).intact is False
    assert load_report(tmp_path, incident_id).tampered


def test_rto_and_rpo_come_from_the_outage_times_and_the_source_named(tmp_path: Path) -> None:
    """RTO is from `started_at` to `recovered_at` (not when `open` and `close` were typed);
    RPO is the age of the named source's last snapshot when the outage began; the service
    named is the first one affected."""
    store = StateStore(tmp_path)
    run = store.start_run("backup", source="population", at=T0 - timedelta(hours=2, minutes=5))
    store.end_run(run, "ok", snapshot_id="ab12", at=T0 - timedelta(hours=2))
    store.close()
    inc = Incidents(tmp_path, clock=_clock(T0 + timedelta(hours=1)), operator=lambda: "duty-wu")
    incident_id = inc.open(
        "Registry down",
        started_at=T0 - timedelta(minutes=10),
        service="residents portal",
        source="population",
    )
    inc.close(incident_id, summary="restored", recovered_at=T0 + timedelta(minutes=20))
    report = load_report(tmp_path, incident_id, config=sample.config(), now=T0 + timedelta(hours=2))
    rto, rpo = report.objective("rto"), report.objective("rpo")
    assert rto is not None and rto.achieved_s == 30 * 60
    assert rpo is not None and rpo.achieved_s == 110 * 60 and rpo.target_s == 4 * 3600
    assert rpo.met is True
    assert report.impact.services[0] == "residents portal"
    assert [b.source for b in report.backups] == ["population"]


def test_without_outage_times_the_incident_claims_no_rto(tmp_path: Path) -> None:
    """An incident closed without `--recovered-at` has no measured recovery time."""
    inc = Incidents(tmp_path, clock=_clock(), operator=lambda: "duty-wu")
    incident_id = inc.open("Registry down")
    inc.close(incident_id, summary="restored")
    rto = load_report(tmp_path, incident_id, now=T0 + timedelta(hours=1)).objective("rto")
    assert rto is not None and rto.achieved_s is None


def test_outage_times_and_source_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`open --started-at --service --source` and `close --recovered-at` record the outage;
    an unknown source or a recovery before the start is one clear error (exit 2)."""
    config = tmp_path / "recoveryd.yaml"
    config.write_text(
        "state_dir: ./state\nencryption: {key_file: ./k}\n"
        "targets: {local: {kind: filesystem, path: ./store}}\n"
        "sources: {population: {kind: sqlite, path: ./p.db, targets: [local]}}\n"
        "daemon: {timezone: Asia/Shanghai}\n",
        encoding="utf-8",
    )
    base = ["--config", str(config), "incident"]
    assert main([*base, "open", "x", "--source", "nope"]) == 2
    assert "not a configured source; use one of: population" in capsys.readouterr().err
    opened = [*base, "open", "x", "--started-at", "2026-11-23T16:00:00", "--service", "portal"]
    assert main([*opened, "--source", "population"]) == 0
    incident_id = capsys.readouterr().out.strip()
    record = next(HashChain(tmp_path / "state" / "incidents" / f"{incident_id}.jsonl").records())
    assert record["started_at"] == "2026-11-23T08:00:00.000Z"  # read in daemon.timezone
    assert record["service"] == "portal" and record["source"] == "population"
    early = [*base, "close", incident_id, "--summary", "s", "--recovered-at", "2026-11-23T07:00Z"]
    assert main(early) == 2
    assert "before the outage began" in capsys.readouterr().err
    close = [*base, "close", incident_id, "--summary", "s", "--recovered-at", "2026-11-23T08:30Z"]
    assert main(close) == 0

"""The health-code surge for real: nginx, the demo service, a 10x surge, the governor."""

from __future__ import annotations

import importlib
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recoveryd.config import LoadedConfig
from recoveryd.surgekit.loadgen import check, run_load
from recoveryd.surgekit.surge import governed_backup, problems
from tests.fixtures.nginx import HealthCodeService, NginxFront
from tests.integration.governor.runner import have_drills, playbook_runner

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
SURGE_RPS, SURGE_S = 200, 10  # baseline 20 rps: 10x


def surge_governor(front: NginxFront) -> str:
    shed = ROOT / "playbooks" / "shed"
    return f"""\
governor:
  interval: 250ms
  signals:
    command:  # demand at the front door: nginx's request counter as a rate
      run: [curl, -s, --max-time, "1", "http://127.0.0.1:{front.port}/nginx_status"]
      field: 3
      counter: true
      value: {{elevated: 40, critical: 60, exit_ratio: 0.7}}
  hold: {{enter: 500ms, exit: 2s}}
  on_enter: {{critical: [{shed}/essential-only.yaml]}}
  on_exit: {{critical: [{shed}/restore-full-service.yaml]}}
"""


def test_surge_sheds_pauses_the_snapshot_and_recovers(
    governed_config: Callable[..., LoadedConfig],
    nginx_front: NginxFront,
    healthcode_service: HealthCodeService,
    tmp_path: Path,
) -> None:
    """A 10x surge: the governor reaches critical, nginx goes essential-only (essential routes
    >= 99% success, others shed with 503), the running snapshot pauses; after the surge the
    level returns to normal, full service is restored, and the snapshot completes and verifies;
    the requests turned away are counted."""
    cfg = governed_config(surge_governor(nginx_front), megabytes=24, bandwidth="4MiB/s")
    status_path = tmp_path / "governor.json"
    out: dict[str, Any] = {}
    watch = threading.Thread(
        target=lambda: out.update(
            status=governed_backup(
                cfg,
                "tiles",
                status_path,
                run_playbook=playbook_runner(cfg, nginx_front.vars()),
            )
        )
    )
    try:
        watch.start()
        summary = run_load(nginx_front.url, rate=SURGE_RPS, duration=SURGE_S)
        watch.join(timeout=240)
    finally:
        nginx_front.reset()
    story = json.loads(status_path.read_text())
    assert problems(story) == [], story
    assert check(summary.to_json(), min_success=0.99, min_shed=1) == [], summary
    assert story["first_critical_s"] is not None and story["first_pause_s"] is not None
    # the count nginx logged, recorded on the governor's shed_action event for the report:
    # the generator's 503s, the essential-only playbook's probe, at most the restore polls
    counted = [a["requests_shed"] for a in story["shed_actions"] if "requests_shed" in a]
    assert len(counted) == 1, story["shed_actions"]
    shed = summary.non_essential.shed_503
    assert shed + 1 <= counted[0] <= shed + 1 + 75, (counted, shed)


@pytest.mark.skipif(not have_drills(), reason="the drill runner (recoveryd.drills) is not built")
def test_surge_playbook_passes_through_the_drill_runner(
    governed_config: Callable[..., LoadedConfig],
    nginx_front: NginxFront,
    healthcode_service: HealthCodeService,
    tmp_path: Path,
) -> None:
    """`playbooks/health-code-surge.yaml` run by the drill runner against real nginx passes."""
    cfg = governed_config(surge_governor(nginx_front), megabytes=24, bandwidth="4MiB/s")
    api = importlib.import_module("recoveryd.drills.api")
    variables = {
        **nginx_front.vars(),
        "python": sys.executable,
        "config": str(cfg.path),
        "source": "tiles",
        "work_dir": str(tmp_path),
        "surge_rps": str(SURGE_RPS),
        "surge_seconds": str(SURGE_S),
    }
    try:
        result = api.run_playbook(
            cfg, ROOT / "playbooks" / "health-code-surge.yaml", yes=True, vars=variables
        )
    finally:
        nginx_front.reset()
    story = json.loads((tmp_path / "governor.json").read_text())
    assert result.status == "passed", (story, (tmp_path / "governor.log").read_text())
    assert problems(story) == []

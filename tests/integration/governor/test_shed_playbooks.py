"""The shedding playbooks switch a real nginx between full service and essential-only mode."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.nginx import NginxFront, http_status
from tests.integration.governor.runner import playbook_runner

pytestmark = pytest.mark.integration
SHED = Path(__file__).resolve().parents[3] / "playbooks" / "shed"


def test_essential_only_keeps_verification_and_sheds_the_rest(
    nginx_front: NginxFront, tmp_path: Path
) -> None:
    """Essential-only mode: /verify and /pay/verify answer 200; other routes answer 503 with
    Retry-After and the zh-CN/en page naming the service counter and the hotline; the
    full-service playbook undoes it."""
    run = playbook_runner(None, nginx_front.vars(), state_dir=tmp_path)
    try:
        run(SHED / "essential-only.yaml")
        assert nginx_front.mode() == "essential-only"
        assert http_status(nginx_front.url + "/verify?code=1") == 200
        assert http_status(nginx_front.url + "/pay/verify?order=7") == 200
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(nginx_front.url + "/appointments", timeout=5)  # noqa: S310
        assert err.value.code == 503
        assert err.value.headers["Retry-After"] == "120"
        page = err.value.read().decode()
        assert "12345" in page and "service counter" in page and "政务服务中心窗口" in page
        run(SHED / "restore-full-service.yaml")
        assert nginx_front.mode() == "full-service"
        assert http_status(nginx_front.url + "/appointments") == 200
    finally:
        nginx_front.reset()


def test_full_service_playbook_counts_the_requests_turned_away(
    nginx_front: NginxFront, tmp_path: Path
) -> None:
    """The requests nginx answered 503 in essential-only mode are counted when full service
    returns (`requests_shed` in the run's result, which the governor adds to its event);
    essential requests are not counted, and the count starts again with the next mode."""
    run = playbook_runner(None, nginx_front.vars(), state_dir=tmp_path)
    try:
        for _ in range(2):
            run(SHED / "essential-only.yaml")
            for _ in range(3):
                assert http_status(nginx_front.url + "/verify?code=1") == 200
            for _ in range(7):
                assert http_status(nginx_front.url + "/appointments") == 503
            result = run(SHED / "restore-full-service.yaml")
            shed = getattr(result, "measures", {}).get("requests_shed")
            # the 7 above, the playbook's own probe that saw the 503, and at most the
            # restore playbook's polls that reached a worker still in essential-only mode
            assert isinstance(shed, int)
            assert 8 <= shed <= 8 + 75, shed
    finally:
        nginx_front.reset()


def test_an_invalid_mode_file_is_refused_by_nginx_t_and_rolled_back(
    nginx_front: NginxFront, tmp_path: Path
) -> None:
    """A broken essential-only file fails `nginx -t`: nginx keeps serving everything and the
    full-service mode file is put back."""
    broken = nginx_front.prefix / "healthcode" / "essential-only.conf"
    good = broken.read_text()
    broken.write_text("location / { this is not nginx; }\n")
    run = playbook_runner(None, nginx_front.vars(), state_dir=tmp_path)
    try:
        with pytest.raises(RuntimeError, match="failed"):
            run(SHED / "essential-only.yaml")
        assert nginx_front.mode() == "full-service"
        assert http_status(nginx_front.url + "/news") == 200
    finally:
        broken.write_text(good)
        nginx_front.reset()

"""The HTML report in a real browser and the PDF through poppler: what a supervisor opens.

Headless Chromium (Debian package) loads the self-contained HTML with the network
disabled; the PDF's text layer must hold the Chinese text (not tofu) and page 1
renders to PNG. Screenshots and page images go to test-artifacts/reports/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from recoveryd.reports import load_report, render_report_bytes
from tests.unit.reports import sample

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "reports"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# counts what the page fetched and whether the chart laid out; added to a copy of the report
PROBE = """<script>
window.addEventListener('load', function () {
  var svg = document.getElementById('timeline-chart');
  var box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  var d = document.documentElement.dataset;
  d.resources = String(performance.getEntriesByType('resource').length);
  d.chartWidth = String(Math.round(box.width));
  d.chartHeight = String(Math.round(box.height));
  d.bars = String(svg ? svg.querySelectorAll('g.bar rect').length : 0);
});
</script>"""


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reports-state")
    sample.make_state_dir(root)
    return root


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--window-size=1100,1600",
            "--virtual-time-budget=5000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_html_renders_in_a_browser_without_network(
    state_dir: Path, tmp_path: Path, lang: str
) -> None:
    """Chromium loads the report with no network, fetches nothing, and lays out the timeline
    chart with one bar per step; a screenshot is kept for people to look at."""
    report = load_report(state_dir, sample.RUN_ID, secrets=[sample.SECRET], now=sample.NOW)
    html = render_report_bytes(report, fmt="html", lang=lang).decode()
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    page = tmp_path / f"report.{lang}.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")

    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', dom.stdout.split(">", 2)[1]))
    assert attrs.get("resources") == "0", attrs
    assert int(attrs["chart-width"]) > 300 and int(attrs["chart-height"]) > 100
    assert int(attrs["bars"]) == len(report.steps)
    assert 'id="timeline-chart"' in dom.stdout

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"drill-report.{lang}.png"
    shot.unlink(missing_ok=True)
    taken = _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000


def test_pdf_holds_chinese_text_and_renders_to_an_image(state_dir: Path, tmp_path: Path) -> None:
    """The Chinese PDF's text layer holds the Chinese headings (fonts embedded, no tofu), and
    pdftoppm renders its first page to a PNG."""
    report = load_report(state_dir, sample.RUN_ID, secrets=[sample.SECRET], now=sample.NOW)
    pdf = tmp_path / "report.zh.pdf"
    pdf.write_bytes(render_report_bytes(report, fmt="pdf", lang="zh", secrets=[sample.SECRET]))
    text = _pdftotext(pdf)
    for phrase in (
        "灾难恢复演练报告",
        "恢复时间目标",
        "未达标",
        "2026年11月23日 15:01:02",
        "整改事项",
    ):
        assert phrase in text, phrase
    assert sample.SECRET not in text
    # the text layer alone would hold the characters even if they were drawn as tofu boxes:
    # a CJK font must be embedded to draw them
    fonts = subprocess.run(
        ["pdffonts", str(pdf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()[2:]
    cjk = [f for f in fonts if re.search(r"CJK|WenQuanYi|Droid-?Sans-?Fallback|AR-?PL", f, re.I)]
    assert any(f.split()[-5] == "yes" for f in cjk), fonts
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = ARTIFACTS / "drill-report.zh.pdf-page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "2", str(pdf), str(prefix)],
        check=True,
        timeout=60,
    )
    pages = sorted(ARTIFACTS.glob("drill-report.zh.pdf-page*.png"))
    assert pages and pages[0].stat().st_size > 10_000
    shutil.copy(pdf, ARTIFACTS / "drill-report.zh.pdf")


def test_pdf_of_a_tampered_journal_says_so_on_page_one(state_dir: Path, tmp_path: Path) -> None:
    """Someone edited the journal to hide the failure: page 1 of the PDF carries the warning."""
    root = tmp_path / "state"
    sample.make_state_dir(root)
    sample.tamper(root / "drills" / sample.RUN_ID / "journal.jsonl")
    report = load_report(root, sample.RUN_ID, now=sample.NOW)
    pdf = tmp_path / "tampered.en.pdf"
    pdf.write_bytes(render_report_bytes(report, fmt="pdf", lang="en"))
    first_page = _pdftotext(pdf, "-f", "1", "-l", "1")
    assert "WARNING: this record was altered" in " ".join(first_page.split())


def _pdftotext(pdf: Path, *args: str) -> str:
    done = subprocess.run(
        ["pdftotext", *args, "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_owners_approvers_and_action_items_are_on_page_one(
    state_dir: Path, tmp_path: Path, lang: str
) -> None:
    """A supervisor who reads only the first page of the PDF learns who owns the system, who
    approved the drill and what must be done next."""
    report = load_report(state_dir, sample.RUN_ID, config=sample.config(), now=sample.NOW)
    pdf = tmp_path / f"report.{lang}.pdf"
    pdf.write_bytes(render_report_bytes(report, fmt="pdf", lang=lang, secrets=[sample.SECRET]))
    first_page = " ".join(_pdftotext(pdf, "-f", "1", "-l", "1").split())
    assert "Provincial big-data bureau" in first_page and "Cloud vendor on-call" in first_page
    assert "ops-wang" in first_page
    assert ("Reduce the data loss window" if lang == "en" else "缩小数据丢失窗口") in first_page

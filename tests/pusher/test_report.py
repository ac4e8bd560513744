"""`pusher report`: a self-contained HTML file, rendered in headless Chromium (Debian's
`chromium` package): the screenshot has plot pixels, the DOM names every sync and its figures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile

import numpy
import pytest
from PIL import Image
from typer.testing import CliRunner

from pusher.cli import app
from pusher.emulators.microsoft_ads import create_app
from pusher.emulators.server import running
from pusher.emulators.settings import emulator_env
from tests.pusher.conftest import Project

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    if not binary:
        pytest.fail("the report test needs Debian's chromium: apt-get install -y chromium (.ci/run does)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180)


@pytest.fixture
def synced(tmp_path, monkeypatch):
    """A project whose cart audience went to the file destination and to the Microsoft emulator
    over several runs (growing, shrinking, one run with rejections), with source freshness."""
    project = Project(tmp_path)
    project.metas["sync_cart"]["min_audience_size"] = 300
    msads = {"name": "sync_msads", "meta": {"pusher": {"destination": "microsoft_ads", "kind": "audience",
                                                        "list_name": "MSADS__Cart_Abandon_0-1d__NoPurchase"}},
             "depends_on": {"nodes": ["model.proj.aud_cart"]}}
    project.write_manifest({"exposure.proj.sync_msads": msads})
    with running(create_app()) as msads_url:
        for key, value in {**emulator_env("http://127.0.0.1:9", msads_url, str(tmp_path / "token")),
                           "PUSHER_FILE_DIR": str(project.out), "MSADS_POLL_SECONDS": "0.01"}.items():
            monkeypatch.setenv(key, value)
        for name in ("DBT_TARGET", "DBT_PROFILES_DIR", "DBT_TARGET_PATH"):
            monkeypatch.delenv(name, raising=False)
        runner = CliRunner()
        for size in (200, 260, 340, 320, 400):
            project.set_audience_range(0, size)
            result = runner.invoke(app, ["sync", "--force", "-s", "sync_cart", "-s", "sync_msads",
                                         "--project-dir", str(project.root)])
            assert result.exit_code == 0, result.output
        monkeypatch.setenv("PUSHER_FILE_REJECT_KEYS", "c00040[0-9]")
        project.set_audience_range(0, 420)
        assert runner.invoke(app, ["sync", "--project-dir", str(project.root)]).exit_code == 3
    (project.root / "target" / "sources.json").write_text(json.dumps({"results": [
        {"unique_id": "source.proj.store.customers", "status": "warn", "max_loaded_at_time_ago_in_s": 30 * 3600,
         "criteria": {"warn_after": {"count": 24, "period": "hour"}, "error_after": {"count": 48, "period": "hour"}}}]}))
    return project, runner


def test_report_is_self_contained_and_renders_in_chromium(synced, tmp_path):
    project, runner = synced
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--out", str(out), "--project-dir", str(project.root)])
    assert result.exit_code == 0 and "wrote" in result.stderr
    page = out.read_text()
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)     # nothing to fetch
    assert page.count("<svg") == 5            # freshness + one per synced sync

    dom = chromium("--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    for name in ("sync_cart", "sync_msads", "sync_people", "sync_events"):
        assert f"id=\"sync-{name}\"" in text
    for figure in ("size over time", "adds (up) and removes (down) per run", "rows rejected per run",
                   "Microsoft serves lists of 300+", "min_audience_size", "source freshness", "30.0 h (warn)",
                   "FILE__Cart_Abandon_0-1d__NoPurchase", "MSADS__Cart_Abandon_0-1d__NoPurchase"):
        assert figure in text, figure
    summary = re.search(r"sync-sync_cart'>sync_cart</a>.*?</tr>", page).group(0)
    assert ">rejected<" in summary and ">420<" in summary and ">410<" in summary and ">10<" in summary

    shot = tmp_path / "report.png"
    render = chromium("--window-size=1300,2400", f"--screenshot={shot}", out.as_uri())
    assert render.returncode == 0 and shot.exists(), render.stderr[-2000:]
    pixels = numpy.asarray(Image.open(shot).convert("RGB"), dtype=int).reshape(-1, 3)
    assert (pixels != 255).any(axis=1).mean() > 0.05                                 # not blank
    for color, least in (("#1f77b4", 200), ("#2ca02c", 2000), ("#d62728", 200), ("#9467bd", 200)):
        target = numpy.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
        near = (numpy.abs(pixels - target) <= 40).all(axis=1).sum()
        assert near > least, (color, near)                                           # lines and bars drawn

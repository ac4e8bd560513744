"""The delivery benchmark runs the version it is told to: a baseline's pusher package, not the
checkout's, even when started from the checkout (where `python -m` would import the checkout's)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_delivery", CHECKOUT / "benchmarks" / "bench_delivery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_baseline_sync_runs_the_baseline_package_when_started_from_the_checkout(tmp_path, monkeypatch):
    bench = _bench()
    monkeypatch.chdir(CHECKOUT)
    baseline = tmp_path / "baseline"
    shutil.copytree(CHECKOUT / "pusher", baseline / "pusher")
    # A version told apart by its exit code: it stops as soon as it is imported.
    (baseline / "pusher" / "__init__.py").write_text("raise SystemExit(7)\n")
    root = tmp_path / "project"
    bench.write_project(root, 100)
    sink = bench.Sink(0, 1000)
    try:
        assert bench.run_sync(root, sink, None, "")["adds"] == 100          # this checkout
        with pytest.raises(SystemExit, match="exited 7"):
            bench.run_sync(root, sink, None, "", code=baseline)
    finally:
        sink.stop()

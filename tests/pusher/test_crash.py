"""Crash safety: kill -9 the pusher at random points, rerun, and the destination and the
ledger must equal the audience exactly (nothing lost, nothing left over). Each seed runs one
batch at a time or with several batches in flight (the file destination's
PUSHER_FILE_MAX_IN_FLIGHT), where a kill leaves several batches delivered but not recorded."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import Callable

import pytest

from pusher.destinations.file import FileDestination

from .conftest import Project, sha

AUDIENCE = 20_000
IN_FLIGHT = 8        # acknowledged batches are written to the ledger two at a time (pusher.pipeline)


def _pusher(project, *args: str) -> subprocess.Popen:
    in_flight = int(project.env.get("PUSHER_FILE_MAX_IN_FLIGHT", "1"))
    # The same pace either way: each batch takes longer, several overlap.
    env = {**os.environ, **project.env, "PUSHER_BATCH_SIZE": "250", "PUSHER_FILE_DELAY_MS": str(25 * in_flight),
           "DBT_PROFILES_DIR": str(project.root)}
    env.pop("DBT_TARGET", None)
    return subprocess.Popen([sys.executable, "-m", "pusher", "sync", "--select", "sync_cart", "--json",
                             "--project-dir", str(project.root), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _churn(project, rng: random.Random) -> None:
    """About 10% leave, 10% join and 2% change email (under the 20% removal guard)."""
    project.sql("delete from aud_cart where hash(customer_id || ?) % 10 = 0", [str(rng.random())])
    start = rng.randrange(AUDIENCE, 10 * AUDIENCE)
    project.sql("insert into aud_cart select 'n' || cast(i as varchar), sha256('n' || cast(i as varchar)), null, "
                "'aud_cart', 'Cart', null, timestamp '2024-01-01' from range(?, ?) t(i)",
                [start, start + AUDIENCE // 10])
    project.sql("update aud_cart set email_sha256 = sha256(email_sha256 || ?) where hash(customer_id || ?) % 50 = 0",
                [str(rng.random()), str(rng.random())])


def _state_written(project) -> float:
    files = (project.state, project.state.with_name(project.state.name + ".wal"))
    return max((path.stat().st_mtime for path in files if path.exists()), default=0.0)


def _run_killed(project, rng: random.Random) -> bool:
    """True when the kill landed while the pusher was still running."""
    launched = time.time()
    process = _pusher(project)
    # Kill at a random point once the run has started (it records itself in the state file): the
    # start-up before that (~0.4 s on DuckDB, longer when another engine is read first) varies.
    # A first sync (80 batches x 25 ms) takes ~2 s, a churn run ~1 s.
    deadline = launched + 180
    while _state_written(project) <= launched and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 1.4))
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return process.returncode == -signal.SIGKILL


def _run_to_completion(project) -> None:
    process = _pusher(project)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()[-2000:]


def _assert_converged(project) -> None:
    audience = project.audience()
    assert project.listed() == audience
    assert project.ledger() == audience


def crash_and_converge(project, seed: int, churn: Callable[[Project, random.Random], None] = _churn) -> None:
    rng = random.Random(seed)
    project.set_audience_range(0, AUDIENCE)
    kills = [_run_killed(project, rng),       # killed during the first (replace) sync
             _run_killed(project, rng)]       # and again while resuming
    _run_to_completion(project)
    _assert_converged(project)
    churn(project, rng)
    kills.append(_run_killed(project, rng))   # killed during removes/adds of a normal run
    _run_to_completion(project)
    _assert_converged(project)
    assert any(kills), "no kill landed mid-sync; the test would prove nothing"


def seeded_project(tmp_path, seed: int, concurrent: bool = False) -> Project:
    """Odd seeds: an audience carrying member_fingerprint (as dbt builds it); even: without."""
    project = Project(tmp_path, model_fingerprint=seed % 2 == 1)
    if concurrent:
        project.env["PUSHER_FILE_MAX_IN_FLIGHT"] = str(IN_FLIGHT)
    return project


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_points_converges(tmp_path, seed):
    crash_and_converge(seeded_project(tmp_path, seed), seed)


@pytest.mark.parametrize("seed", [4, 5])
def test_sigkill_with_batches_in_flight_converges(tmp_path, seed):
    crash_and_converge(seeded_project(tmp_path, seed, concurrent=True), seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 150))
def test_sigkill_at_random_points_converges_50_seeds(tmp_path, seed):
    """Half the seeds one batch at a time, half with batches in flight (both fingerprint kinds each)."""
    crash_and_converge(seeded_project(tmp_path, seed, concurrent=seed % 4 >= 2), seed)


class DiesAfterDelivery(FileDestination):
    """Delivers a batch, then the process 'dies' before the engine can write the ledger."""

    def __init__(self, directory, die_on_batch: int):
        super().__init__(directory)
        self.batches = 0
        self.die_on_batch = die_on_batch

    def add_members(self, ref, members, *, replace=False):
        result = super().add_members(ref, members, replace=replace)
        self.batches += 1
        if self.batches == self.die_on_batch:
            raise KeyboardInterrupt("killed between the destination's ack and the ledger write")
        return result


def test_kill_between_ack_and_ledger_write_resends(project):
    project.env["PUSHER_BATCH_SIZE"] = "10"
    project.set_audience_range(0, 35)
    project.sync()
    project.set_audience_range(0, 65)        # 30 new: 3 batches of 10
    with pytest.raises(KeyboardInterrupt):
        project.sync(destination=DiesAfterDelivery(project.out, die_on_batch=2))
    ledger = project.ledger()
    assert len(ledger) == 45                 # batch 1 recorded, batch 2 delivered but not recorded
    assert len(project.listed()) == 55
    report = project.sync()
    assert report.outcomes[0].sent["adds"] == 20      # batch 2 is sent again, then batch 3
    assert project.listed() == project.audience() == project.ledger()
    assert sha("user50@example.com") in {ids[0] for ids in project.listed().values()}

"""What real teams do to the pusher (issue 9): rebuild the warehouse, lose the ledger, hide
failed tests, interrupt runs. A real DuckDB warehouse and state file, the CLI as a process."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import quote, quote_plus

import duckdb
import pytest

from pusher.errors import EXIT_GUARD_STOPPED, EXIT_OK

from .conftest import Project


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


def pusher(project: Project, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **project.env, "DBT_PROFILES_DIR": str(project.root), **(env or {})}
    for name in ("DBT_TARGET", "DBT_TARGET_PATH", "PUSHER_STATE_PATH"):
        if name not in (env or {}):
            environment.pop(name, None)
    return subprocess.run([sys.executable, "-m", "pusher", *args, "--project-dir", str(project.root)],
                          env=environment, capture_output=True, text=True, timeout=300)


def members_in(state_file) -> int:
    with duckdb.connect(str(state_file), read_only=True) as conn:
        return conn.execute("select count(*) from pusher_ledger.members").fetchone()[0]


# -- 9.1 the ledger lives in its own state file ------------------------------------------------------
def test_the_ledger_lives_outside_the_warehouse_and_survives_its_rebuild(project):
    project.set_audience_range(0, 20)
    assert project.sync().exit_code == EXIT_OK
    assert project.state.exists()
    assert project.sql("select count(*) from information_schema.schemata where catalog_name = 'warehouse' "
                       "and schema_name = 'pusher_ledger'") == [(0,)], "nothing of the ledger in the warehouse"
    # The warehouse is deleted and built again from scratch, with the same data.
    project.db.unlink()
    Project(project.root)                     # recreates the (empty) tables and the manifest
    project.set_audience_range(0, 20)
    report = project.sync()
    assert report.exit_code == EXIT_OK and report.outcomes[0].requests == 0
    assert len(project.ledger()) == 20


def test_state_path_setting_is_taken_from_the_project(project, tmp_path_factory):
    project.set_audience_range(0, 3)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    done = pusher(project, "sync", "--json", env={"PUSHER_STATE_PATH": "state/ledger.duckdb"})
    assert done.returncode == 0, done.stderr
    assert members_in(project.root / "state" / "ledger.duckdb") == 3
    done = pusher(project, "sync", "--json", env={"PUSHER_STATE_PATH": str(elsewhere / "x.duckdb")})
    assert done.returncode == 0 and members_in(elsewhere / "x.duckdb") == 3


def test_an_old_in_warehouse_ledger_is_copied_once_into_the_state_file(project):
    project.set_audience_range(0, 20)
    project.sync()
    # What an older pusher left: the ledger in the warehouse's schema pusher_ledger, no state file.
    tables = [row[0] for row in project.sql("select table_name from information_schema.tables "
                                            "where table_catalog = 'pusher_state' and table_type = 'BASE TABLE'")]
    project.sql("create schema warehouse.pusher_ledger")
    for name in tables:
        project.sql(f"create table warehouse.pusher_ledger.{name} as select * from pusher_state.pusher_ledger.{name}")
    project.lose_ledger()

    moved = pusher(project, "sync", "--json")
    assert moved.returncode == 0, moved.stderr
    assert "ledger was copied from the warehouse" in moved.stderr and str(project.state) in moved.stderr
    assert json.loads(moved.stdout)["syncs"][0]["requests"] == 0, "the copied ledger is used: nothing resent"
    assert len(project.ledger()) == 20

    # Once only: a later loss of the state file never brings the stale warehouse copy back.
    project.lose_ledger()
    again = pusher(project, "sync", "--json")
    assert again.returncode == 0 and "copied" not in again.stderr


def test_a_first_sync_never_replaces_a_list_it_does_not_know_beyond_the_guard(project):
    project.set_audience_range(0, 20)
    project.sync()
    project.lose_ledger()
    project.set_audience_range(0, 1)        # a broken model, and no ledger to compare it with
    report = project.sync()
    assert report.exit_code == EXIT_GUARD_STOPPED and report.outcomes[0].stopped_by == ["remove_share"]
    assert "holds 20 members" in report.outcomes[0].message
    assert len(project.listed()) == 20, "the list keeps its members"
    assert project.sync(overrides=["remove_share"]).exit_code == EXIT_OK
    assert project.listed() == project.audience()


# -- 9.11 exhausted rows, Ctrl-C -------------------------------------------------------------------------
def test_retry_resets_exhausted_rows_and_status_names_the_command(project):
    project.set_meta("sync_cart", max_row_attempts=2)
    project.set_audience_range(0, 5)
    reject = {"PUSHER_FILE_REJECT_KEYS": "c000001|c000002"}
    for _ in range(2):
        assert pusher(project, "sync", "--select", "sync_cart", env=reject).returncode == 3
    status = json.loads(pusher(project, "status", "--select", "sync_cart", "--json").stdout)["syncs"][0]
    assert status["rejected_exhausted"] == 2 and status["retry_command"] == "pusher retry sync_cart"
    assert "pusher retry sync_cart" in pusher(project, "status", "--select", "sync_cart").stderr
    assert pusher(project, "sync", "--select", "sync_cart").returncode == 3, "exhausted rows are not resent"
    assert set(project.listed()) == {"c000000", "c000003", "c000004"}

    one = pusher(project, "retry", "sync_cart", "--key", "c000001")
    assert one.returncode == 0 and "reset 1 exhausted row(s) for key c000001" in one.stdout
    assert pusher(project, "sync", "--select", "sync_cart").returncode == 3      # c000002 still exhausted
    rest = json.loads(pusher(project, "retry", "sync_cart", "--json").stdout)
    assert rest == {"sync": "sync_cart", "key": None, "reset": 1}
    assert pusher(project, "sync", "--select", "sync_cart").returncode == 0
    assert project.listed() == project.audience() == project.ledger()
    assert "nothing to retry" in pusher(project, "retry", "sync_cart").stdout


def test_ctrl_c_ends_with_a_clear_message_and_exit_130(project):
    project.set_audience_range(0, 2000)
    environment = {**os.environ, **project.env, "DBT_PROFILES_DIR": str(project.root), "PUSHER_BATCH_SIZE": "50",
                   "PUSHER_FILE_DELAY_MS": "100"}
    for name in ("DBT_TARGET", "DBT_TARGET_PATH", "PUSHER_STATE_PATH"):
        environment.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "pusher", "sync", "--select", "sync_cart",
                                "--project-dir", str(project.root)], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while len(project.listed()) < 200:            # wait until several batches have been delivered
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "interrupted; acknowledged batches are kept, rerun to continue" in err and "Traceback" not in err
    assert 0 < len(project.ledger()) < 2000
    assert pusher(project, "sync", "--select", "sync_cart").returncode == 0
    assert project.listed() == project.audience() == project.ledger()


def test_one_malformed_exposure_stops_only_its_own_sync(project):
    project.write_manifest({"exposure.proj.sync_bad": {
        "name": "sync_bad", "meta": {"pusher": {"destination": "file", "kind": "audience", "list_name": "no prefix"}},
        "depends_on": {"nodes": ["model.proj.aud_cart"]}}})
    project.set_audience_range(0, 5)
    everything = pusher(project, "sync", "--select", "sync_cart", "--select", "sync_bad", "--json")
    assert everything.returncode == 5, everything.stderr
    by_sync = {item["sync"]: item for item in json.loads(everything.stdout)["syncs"]}
    assert by_sync["sync_cart"]["status"] == "ok" and by_sync["sync_cart"]["sent"]["adds"] == 5
    assert by_sync["sync_bad"]["status"] == "config_error" and "meta.pusher.list_name" in by_sync["sync_bad"]["message"]
    assert project.listed() == project.audience()

    project.set_audience_range(0, 7)
    good = pusher(project, "sync", "--select", "sync_cart", "--json")
    assert good.returncode == 0 and json.loads(good.stdout)["syncs"][0]["sent"]["adds"] == 2
    planned = pusher(project, "plan", "--json")
    assert planned.returncode == 5
    assert {item["sync"]: item["status"] for item in json.loads(planned.stdout)["syncs"]}["sync_bad"] == "config_error"


# -- 9.10 secrets in every encoding -----------------------------------------------------------------------
SITE, KEY = "site-redact-1", "cio-key-redact-5be0c2e9/x"     # "/" changes under URL-encoding


def _echoing_track_api():
    """A Track API that answers every batch 207 and echoes the credentials it was sent, raw,
    as the Basic header and URL-encoded, in each rejection: what a careless service does."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def batch(request):
        header = request.headers.get("authorization", "")
        body = await request.json()
        return JSONResponse({"errors": [
            {"batch_index": index, "reason": "invalid", "message": f"auth {header} key {KEY} q={quote(KEY, safe='')}"}
            for index in range(len(body.get("batch") or []))]}, status_code=207)

    return Starlette(routes=[Route("/api/v2/batch", batch, methods=["POST"])])


def test_a_credential_echoed_by_the_destination_is_kept_nowhere(project):
    from pusher.emulators.server import running

    project.set_meta("sync_people", destination="customerio")
    project.sql("insert into cio_people values ('p1', 'ann@example.com', 'Ann', 1, true, null)")
    key = KEY
    with running(_echoing_track_api()) as url:
        env = {"CUSTOMERIO_SITE_ID": SITE, "CUSTOMERIO_API_KEY": key, "CUSTOMERIO_TRACK_URL": url,
               "CUSTOMERIO_APP_URL": url, "CUSTOMERIO_RETRY_BASE_DELAY": "0.01"}
        outputs = [pusher(project, "sync", "--select", "sync_people", "--json", env=env)]
        assert outputs[0].returncode == 3, outputs[0].stderr
        for command in (("status", "--json"), ("status", "--verbose"), ("history", "--json")):
            outputs.append(pusher(project, *command, env=env))
    text = "\n".join(part for done in outputs for part in (done.stdout, done.stderr))
    assert "auth ***" in text or "auth Basic ***" in text, "the rejection is still reported"
    with duckdb.connect(str(project.state), read_only=True) as conn:
        tables = [row[0] for row in conn.execute("select table_name from information_schema.tables").fetchall()]
        text += "\n".join(str(conn.execute(f'select * from pusher_ledger."{name}"').fetchall()) for name in tables)
    files = b"".join(path.read_bytes() for path in project.root.rglob("*") if path.is_file())
    basic = base64.b64encode(f"{SITE}:{key}".encode()).decode()
    for form in (key, basic, quote(key, safe=""), quote_plus(key)):
        assert form not in text, f"a credential leaked into output or the ledger: {form[:6]}…"
        assert form.encode() not in files, f"a credential leaked into a file: {form[:6]}…"
    assert "ann@example.com" not in text, "no customer email in output"


# -- 9.3 / 9.4 renamed and deleted lists -----------------------------------------------------------------
def test_renaming_list_name_creates_and_fills_the_new_list_and_says_so(project):
    project.set_audience_range(0, 5)
    assert project.sync().exit_code == EXIT_OK
    project.set_meta("sync_cart", list_name="FILE__Cart_Renamed")
    report = project.sync()
    outcome = report.outcomes[0]
    assert report.exit_code == EXIT_OK and outcome.sent["adds"] == 5
    assert any("list_name changed from FILE__Cart_Abandon_0-1d__NoPurchase to FILE__Cart_Renamed" in warning
               for warning in outcome.warnings)
    assert project.listed("FILE__Cart_Renamed") == project.audience() == project.ledger()
    assert project.sync().outcomes[0].requests == 0


def test_reset_rebuilds_a_list_deleted_at_the_destination(project):
    project.set_audience_range(0, 5)
    assert pusher(project, "sync", "--select", "sync_cart").returncode == 0
    for path in project.out.rglob("*"):          # someone deletes the list at the destination
        if path.is_file() and "Cart_Abandon" in path.name:
            path.unlink()
    assert project.listed() == {}
    done = pusher(project, "reset", "sync_cart")
    assert done.returncode == 0 and "forgot 5 acknowledged member(s)" in done.stdout
    assert pusher(project, "sync", "--select", "sync_cart").returncode == 0
    assert project.listed() == project.audience() == project.ledger()


# -- 9.9 a full disk ends with a clear message, and the next run converges --------------------------
def _file_size_limit(limit: int):
    """In the child: writes past `limit` bytes fail with EFBIG ("File too large"), as a full disk
    fails them with ENOSPC (SIGXFSZ ignored, so the write returns the error instead of killing)."""
    import resource

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_mid_sync_is_a_clear_error_and_the_rerun_converges(project):
    project.set_audience_range(0, 50)
    assert project.sync().exit_code == EXIT_OK          # the state file exists, at its first size
    project.set_audience_range(0, 20_000)               # a big change: its ledger writes outgrow the limit
    size = project.state.stat().st_size
    environment = {**os.environ, **project.env, "DBT_PROFILES_DIR": str(project.root), "PUSHER_BATCH_SIZE": "500"}
    for name in ("DBT_TARGET", "DBT_TARGET_PATH", "PUSHER_STATE_PATH"):
        environment.pop(name, None)
    full = subprocess.run([sys.executable, "-m", "pusher", "sync", "--select", "sync_cart", "--project-dir",
                           str(project.root)], env=environment, capture_output=True, text=True, timeout=300,
                          preexec_fn=_file_size_limit(size + 256 * 1024))
    assert full.returncode == 6, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    assert "cannot write the warehouse or the pusher's state file" in full.stderr
    assert "Free disk space, then rerun" in full.stderr
    rerun = pusher(project, "sync", "--select", "sync_cart")
    assert rerun.returncode == EXIT_OK, rerun.stderr[-2000:]
    assert set(project.listed()) == set(project.audience())
    assert set(project.ledger()) == set(project.audience())


def test_a_ctrl_c_swallowed_inside_a_query_still_stops_after_the_next_recorded_batch(project):
    """DuckDB can consume the KeyboardInterrupt of a SIGINT that lands inside a query; the CLI's
    handler also sets a flag, and the engine stops once the batch in hand is recorded."""
    from pusher.sync import INTERRUPT_REQUESTED

    project.set_audience_range(0, 500)
    project.env["PUSHER_BATCH_SIZE"] = "100"
    INTERRUPT_REQUESTED.set()                  # as if Ctrl-C came and its exception was lost
    try:
        with pytest.raises(KeyboardInterrupt):
            project.sync()
    finally:
        INTERRUPT_REQUESTED.clear()
    assert len(project.ledger()) == 100, "exactly the acknowledged batch is recorded"
    assert project.sync().exit_code == EXIT_OK
    assert project.listed() == project.audience() == project.ledger()

"""The `pusher` process ends without interpreter teardown once a command is done (pusher.cli.main):
its output and its ledger must be complete all the same. A real DuckDB warehouse and state file,
the CLI as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import duckdb

from pusher.errors import EXIT_CONFIG_ERROR, EXIT_OK

from .conftest import Project

# Runs `pusher ARGS...` through pusher.cli.main as `python -m pusher` does, with an atexit handler
# and an object whose finalizer only interpreter teardown would run, each leaving a mark.
RUN_MAIN = textwrap.dedent("""
    import atexit, sys
    marks = sys.argv.pop(1)

    class FinalizedAtTeardown:
        def __del__(self):
            with open(marks, "a") as out:
                out.write("teardown\\n")

    kept = FinalizedAtTeardown()
    atexit.register(lambda: open(marks, "a").write("atexit\\n"))
    sys.argv[0] = "pusher"
    from pusher.cli import main
    main()
""")


def new_project(tmp_path) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    return Project(root)


def run_pusher(project: Project, marks, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **project.env, "DBT_PROFILES_DIR": str(project.root)}
    for name in ("DBT_TARGET", "DBT_TARGET_PATH", "PUSHER_STATE_PATH"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-c", RUN_MAIN, str(marks), *args, "--project-dir", str(project.root)],
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_sync_process_ends_without_teardown_and_its_output_and_ledger_are_complete(tmp_path):
    project = new_project(tmp_path)
    project.set_audience_range(0, 5000)
    marks = tmp_path / "marks"
    done = run_pusher(project, marks, "sync", "--select", "sync_cart", "--json")
    assert done.returncode == EXIT_OK, done.stderr
    report = json.loads(done.stdout)                  # the whole document reached the pipe
    assert report["exit_code"] == EXIT_OK and report["syncs"][0]["sent"]["adds"] == 5000
    assert marks.read_text() == "atexit\n", "atexit handlers run; teardown's finalizers do not"
    # The ledger, read back once the process is gone: every acknowledged batch is in the state file.
    with duckdb.connect(str(project.state), read_only=True) as conn:
        assert conn.execute("select count(*) from pusher_ledger.members").fetchone() == (5000,)
        assert conn.execute("select status, exit_code from pusher_ledger.runs").fetchall() == [("done", EXIT_OK)]
    assert len(project.listed()) == 5000
    again = run_pusher(project, tmp_path / "marks-again", "sync", "--select", "sync_cart", "--json")
    assert again.returncode == EXIT_OK and json.loads(again.stdout)["syncs"][0]["requests"] == 0


def test_the_exit_code_and_error_of_a_failed_command_survive_the_quick_exit(tmp_path):
    project = new_project(tmp_path)
    (project.root / "profiles.yml").unlink()
    marks = tmp_path / "marks"
    done = run_pusher(project, marks, "sync", "--json")
    assert done.returncode == EXIT_CONFIG_ERROR
    assert json.loads(done.stdout)["exit_code"] == EXIT_CONFIG_ERROR
    assert "no profiles.yml" in done.stderr
    assert marks.read_text() == "atexit\n"


def test_a_thread_pool_left_open_does_not_hold_the_quick_exit(tmp_path):
    # Interpreter exit wakes a ThreadPoolExecutor's idle workers before it joins them (they wait
    # on their queue, not daemon threads): the quick exit must do the same, not wait for ever.
    left_open = textwrap.dedent("""
        import sys
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(2)
        pool.submit(int).result()
        sys.argv[1:] = ["--help"]
        from pusher.cli import main
        main()
    """)
    done = subprocess.run([sys.executable, "-c", left_open], capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_OK, done.stderr
    assert "sync" in done.stdout

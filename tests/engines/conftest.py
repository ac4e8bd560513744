"""The demo world built on real engines: a throwaway PostgreSQL server and a local Spark session,
each with the committed `postgres` / `spark` profile target, from the same seeds and as_of as
the DuckDB build in tests/conftest.py. Every test module here is marked `engines`
(run by make test-engines, which installs the `engines` extra; kept out of make test)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DBT, DEMO_AS_OF, REPO, DbtRun

from . import postgres_server


def run_dbt_target(workdir: Path, target: str, env: dict[str, str], *arguments: str,
                   timeout: int = 2100) -> DbtRun:
    """dbt on `target` of the committed profiles.yml, in seeds mode at the demo's as_of;
    target/ and logs/ stay under workdir."""
    completed = subprocess.run(
        [str(DBT), *arguments, "--target", target, "--profiles-dir", str(REPO), "--project-dir", str(REPO),
         "--target-path", str(workdir / "target")],
        cwd=workdir, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PUSHER_SOURCE_DATA": "seeds", "PUSHER_AS_OF": DEMO_AS_OF,
             "DBT_LOG_PATH": str(workdir / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env},
    )
    results_file = workdir / "target" / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    return DbtRun(completed, results)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of our own for the whole session (see postgres_server.py)."""
    bindir = postgres_server.server_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries not found: install PostgreSQL (Debian: apt-get install "
                    "postgresql; .ci/run does) or set PUSHER_PG_BINDIR to the directory holding initdb")
    server = postgres_server.start(bindir)
    try:
        yield server
    finally:
        postgres_server.stop(bindir, server)


@dataclass
class EngineBuild:
    workdir: Path
    env: dict[str, str]
    build: DbtRun


@pytest.fixture(scope="session")
def postgres_demo(postgres, tmp_path_factory) -> EngineBuild:
    workdir = tmp_path_factory.mktemp("postgres-demo")
    postgres_server.create_database(postgres, "demo")
    env = postgres.env("demo")
    build = run_dbt_target(workdir, "postgres", env, "build")
    assert build.results, build.output()
    return EngineBuild(workdir, env, build)


@pytest.fixture(scope="session")
def postgres_incremental(postgres_demo) -> DbtRun:
    """The PostgreSQL demo run again: the incremental state models take their incremental path."""
    return run_dbt_target(postgres_demo.workdir, "postgres", postgres_demo.env, "run")


@pytest.fixture(scope="session")
def spark_demo(tmp_path_factory) -> EngineBuild:
    """The demo on a local Spark session (pyspark inside the dbt process, parquet tables); its
    tables, metastore and derby.log stay in the work directory."""
    workdir = tmp_path_factory.mktemp("spark-demo")
    env = {"PUSHER_SPARK_DIR": str(workdir), "PUSHER_SPARK_SCHEMA": "retention"}
    build = run_dbt_target(workdir, "spark", env, "build")
    assert build.results, build.output()
    return EngineBuild(workdir, env, build)

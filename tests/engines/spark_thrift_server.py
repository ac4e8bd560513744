"""A throwaway Spark Thrift server for the engine tests: pyspark's own HiveThriftServer2 (its jar
ships in the pyspark package) on a free loopback port, local[2], with its derby metastore and
parquet tables in a temporary directory, and the settings of the committed `spark` target (UTC
session time zone, few shuffle partitions, no UI). Stopped and deleted afterwards; the JVM also
dies with the process that started it (PR_SET_PDEATHSIG), so a killed test run leaves none.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pusher.emulators.server import free_port

PR_SET_PDEATHSIG = 1       # linux/prctl.h


@dataclass
class ThriftServer:
    host: str
    port: int
    root: Path
    process: subprocess.Popen

    def env(self, schema: str = "retention") -> dict[str, str]:
        """The variables the committed `spark_thrift` profile target reads."""
        return {"PUSHER_SPARK_HOST": self.host, "PUSHER_SPARK_PORT": str(self.port), "PUSHER_SPARK_SCHEMA": schema}

    @property
    def tables_dir(self) -> Path:
        return self.root / "spark-warehouse"

    def log_tail(self, lines: int = 40) -> str:
        log = self.root / "server.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def _die_with_parent() -> None:
    os.setsid()                                   # its own process group, stopped as a whole
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start(timeout: float = 300) -> ThriftServer:
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    root = Path(tempfile.mkdtemp(prefix="pusher-spark-thrift-"))
    port = free_port()
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(root / "spark-warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
    }
    command = [str(spark_home / "bin" / "spark-submit"), "--class",
               "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2", "--master", "local[2]",
               "--name", "pusher-test-thrift", "--driver-memory", os.environ.get("PUSHER_SPARK_DRIVER_MEMORY", "1g"),
               "--driver-java-options", f"-Dderby.system.home={root}",
               *[part for key, value in settings.items() for part in ("--conf", f"{key}={value}")],
               "--hiveconf", f"hive.server2.thrift.port={port}", "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1"]
    env = {**os.environ, "SPARK_HOME": str(spark_home), "PYSPARK_PYTHON": sys.executable}
    with (root / "server.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    server = ThriftServer("127.0.0.1", port, root, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop(server)
            raise RuntimeError(f"the Spark Thrift server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection((server.host, port), timeout=1):
                return server
        except OSError:
            time.sleep(0.5)
    tail = server.log_tail()
    stop(server)
    raise RuntimeError(f"the Spark Thrift server did not listen on {port} within {timeout:.0f} s:\n{tail}")


def stop(server: ThriftServer) -> None:
    """SIGTERM to its process group, SIGKILL if it is still there after 20 s; then its files."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.process.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    shutil.rmtree(server.root, ignore_errors=True)

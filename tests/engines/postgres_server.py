"""A throwaway PostgreSQL server for the engine tests: its own cluster (initdb) in a temporary
directory, on a free loopback port, with trust authentication, stopped and deleted afterwards.

It uses the server binaries of the installed PostgreSQL (Debian's postgresql package puts them
in /usr/lib/postgresql/<version>/bin; PUSHER_PG_BINDIR overrides). A private cluster rather than
the system one: tests never depend on, or disturb, a server someone else runs on this machine.
PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pusher.emulators.server import free_port

SUPERUSER = "pusher"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    root: Path

    def env(self, database: str) -> dict[str, str]:
        """The variables the committed `postgres` profile target reads."""
        return {"PUSHER_PG_HOST": self.host, "PUSHER_PG_PORT": str(self.port), "PUSHER_PG_USER": self.user,
                "PUSHER_PG_DATABASE": database, "DBT_ENV_SECRET_PG_PASSWORD": ""}


def server_bindir() -> Path | None:
    configured = os.environ.get("PUSHER_PG_BINDIR")
    if configured:
        return Path(configured)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda path: int(Path(path).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_owner() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def start(bindir: Path) -> PostgresServer:
    root = Path(tempfile.mkdtemp(prefix="pusher-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data = root / "data"
    subprocess.run([*_as_owner(), str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                    "--encoding=UTF8", "--locale=C"], check=True, capture_output=True, text=True)
    port = free_port()
    # fsync off: a test server's data is thrown away anyway, and it makes the build much faster
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run([*_as_owner(), str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                    "-o", options, "-w", "-t", "60", "start"], check=True, capture_output=True, text=True)
    return PostgresServer(host="127.0.0.1", port=port, user=SUPERUSER, root=root)


def stop(bindir: Path, server: PostgresServer) -> None:
    subprocess.run([*_as_owner(), str(bindir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate",
                    "-w", "stop"], capture_output=True, text=True)
    shutil.rmtree(server.root, ignore_errors=True)


def create_database(server: PostgresServer, name: str, template: str | None = None) -> None:
    """A new database, empty or a copy of `template` (which nobody may be connected to)."""
    copy = f' template "{template}"' if template else ""
    execute(server, "postgres", f'create database "{name}"{copy}')


def execute(server: PostgresServer, database: str, sql: str, params: tuple = ()) -> list[tuple]:
    """One statement in autocommit; its rows (empty for a statement without a result)."""
    import psycopg2  # ships with dbt-postgres

    connection = psycopg2.connect(host=server.host, port=server.port, user=server.user, dbname=database)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()

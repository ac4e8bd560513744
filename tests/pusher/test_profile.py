"""profiles.yml is read with dbt's own renderer: what `dbt build` accepts, the pusher accepts.
No server is needed: these check the rendered target (and that a secret never shows)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pusher.errors import ConfigError, redact
from pusher.warehouse import SUPPORTED_TYPES, _plain, _rendered_by_dbt, load_profile

REPO = Path(__file__).resolve().parents[2]


def _project(root: Path, outputs: str) -> Path:
    (root / "dbt_project.yml").write_text("name: proj\nprofile: proj\nconfig-version: 2\n")
    (root / "profiles.yml").write_text("proj:\n  target: \"{{ env_var('DBT_TARGET', 'dev') }}\"\n  outputs:\n"
                                       + outputs)
    return root


def test_the_committed_postgres_target_takes_its_port_as_a_number_and_its_password_from_a_secret():
    env = {"DBT_TARGET": "postgres", "PUSHER_PG_PORT": "6543", "DBT_ENV_SECRET_PG_PASSWORD": "pg-pass-4e1f0a"}
    profile = load_profile(REPO, env=env)
    assert profile.target == "postgres" and profile.settings["type"] == "postgres"
    assert profile.settings["port"] == 6543 and isinstance(profile.settings["port"], int)
    assert profile.settings["password"] == "pg-pass-4e1f0a"
    assert profile.settings["threads"] == 2
    assert "pg-pass-4e1f0a" not in repr(profile)


def test_every_dbt_filter_renders_and_a_secret_never_reaches_an_error(tmp_path):
    root = _project(tmp_path, """    dev:
      type: postgres
      host: "{{ env_var('HOST') }}"
      port: "{{ env_var('PORT') | as_number }}"
      keepalives_idle: "{{ '30' | as_native }}"
      retries: "{{ env_var('RETRIES', '2') | int }}"
      user: u
      password: "{{ env_var('DBT_ENV_SECRET_PASS') }}"
      dbname: "{{ env_var('DB') }}"
      schema: s
""")
    env = {"HOST": "db.internal", "PORT": "5433", "DB": "shop", "DBT_ENV_SECRET_PASS": "secret-pass-91c2"}
    settings = load_profile(root, env=env).settings
    assert (settings["port"], settings["keepalives_idle"], settings["retries"]) == (5433, 30, 2)
    assert settings["host"] == "db.internal" and settings["dbname"] == "shop"
    with pytest.raises(ConfigError) as missing:
        load_profile(root, env={k: v for k, v in env.items() if k != "DB"})
    assert "DB" in str(missing.value) and "secret-pass-91c2" not in str(missing.value)
    # Any later message that would carry it (a driver's error, say) has it blanked.
    assert redact("login failed for password secret-pass-91c2") == "login failed for password ***"


def test_the_default_target_is_duckdb_and_an_unknown_type_is_named(tmp_path):
    assert load_profile(REPO, env={}).settings["type"] == "duckdb"
    assert set(SUPPORTED_TYPES) == {"duckdb", "postgres", "spark"}
    root = _project(tmp_path, "    dev:\n      type: oracle\n      user: u\n")
    with pytest.raises(ConfigError, match="type 'oracle'.*supports duckdb, postgres, spark"):
        load_profile(root, env={})


def test_a_profile_without_jinja_is_read_as_dbt_reads_it_without_importing_dbt(tmp_path):
    """dbt renders text without Jinja to itself; importing it would cost every run a second."""
    import subprocess
    import sys

    (tmp_path / "dbt_project.yml").write_text("name: proj\nprofile: proj\nconfig-version: 2\n")
    (tmp_path / "profiles.yml").write_text("proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                           "      path: warehouse.duckdb\n      threads: 2\n"
                                           "    other:\n      type: duckdb\n      path: other.duckdb\n")
    plain = load_profile(tmp_path, env={})
    assert (plain.target, plain.settings) == ("dev", {"type": "duckdb", "path": "warehouse.duckdb", "threads": 2})
    assert load_profile(tmp_path, env={"DBT_TARGET": "other"}).settings["path"] == "other.duckdb"
    raw = yaml.safe_load((tmp_path / "profiles.yml").read_text())["proj"]
    for target in (None, "other"):         # what dbt's renderer makes of the same text
        assert _plain(raw, "proj", target, tmp_path) == tuple(_rendered_by_dbt(raw, "proj", target, {}, tmp_path))
    with pytest.raises(ConfigError, match="no target named 'missing'"):
        load_profile(tmp_path, target="missing", env={})
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; from pusher.warehouse import load_profile; "
         f"load_profile(Path({str(tmp_path)!r}), env={{}}); print('dbt.config' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"

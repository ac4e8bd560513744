"""profiles.yml is read with dbt's own renderer: what `dbt build` accepts, the pusher accepts.
No server is needed: these check the rendered target (and that a secret never shows)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pusher.errors import ConfigError, redact
from pusher.profile_render import render_profile
from pusher.sources import open_source
from pusher.warehouse import _rendered_by_dbt, load_profile

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


def test_the_default_target_is_duckdb_and_an_adapter_not_installed_is_named(tmp_path):
    """Any type is read through its dbt adapter (pusher.sources' generic reader); one that is not
    installed stops with what to install."""
    assert load_profile(REPO, env={}).settings["type"] == "duckdb"
    root = _project(tmp_path, "    dev:\n      type: oracle\n      user: u\n")
    profile = load_profile(root, env={})
    with pytest.raises(ConfigError, match="target 'dev' has type 'oracle', whose dbt adapter is not installed: pip install dbt-oracle"):
        open_source(profile)


def test_a_profile_without_jinja_is_read_as_dbt_reads_it_without_importing_dbt(tmp_path):
    """dbt renders text without Jinja to itself; importing it would cost every run a second, and
    Jinja itself is not imported for plain values either."""
    import subprocess
    import sys

    (tmp_path / "dbt_project.yml").write_text("name: proj\nprofile: proj\nconfig-version: 2\n")
    (tmp_path / "profiles.yml").write_text("proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                           "      path: warehouse.duckdb\n      threads: 2\n"
                                           "      note: \"100% } #1 'a' \\\\ [x]\"\n"
                                           "    other:\n      type: duckdb\n      path: other.duckdb\n"
                                           "      note: |\n        two\n        lines\n")
    plain = load_profile(tmp_path, env={})
    assert (plain.target, plain.settings) == ("dev", {"type": "duckdb", "path": "warehouse.duckdb", "threads": 2,
                                                      "note": "100% } #1 'a' \\ [x]"})
    assert load_profile(tmp_path, env={"DBT_TARGET": "other"}).settings["path"] == "other.duckdb"
    raw = yaml.safe_load((tmp_path / "profiles.yml").read_text())["proj"]
    for target in (None, "other"):         # what dbt's renderer makes of the same text
        assert render_profile(raw, target, {}) == tuple(_rendered_by_dbt(raw, "proj", target, {}, tmp_path))
    with pytest.raises(ConfigError, match="no target named 'missing'"):
        load_profile(tmp_path, target="missing", env={})
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; from pusher.warehouse import load_profile; "
         f"load_profile(Path({str(tmp_path)!r}), env={{}}); print('dbt.config' in sys.modules, 'jinja2' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["False", "False"]


LIGHT_PROFILE = """proj:
  target: "{{ env_var('DBT_TARGET', 'dev') }}"
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('DB_DIR', 'warehouse') }}/{{ env_var('DB_FILE', 'w.duckdb') }}"
      threads: "{{ env_var('THREADS', '4') | as_number }}"
      retries: "{{ env_var('RETRIES', '2') | int }}"
      read_only: "{{ env_var('READ_ONLY', 'False') | as_bool }}"
      extensions: "{{ ['httpfs', 'parquet'] | as_native }}"
      schema: "{{ '0123' | as_text }}"
      plain_number_text: "{{ env_var('N', '42') }}"
      started: 2026-01-02
      settings:
        memory_limit: "{{ env_var('LIMIT', '1GB') }}"
        tags: ["{{ env_var('TAG', 'a') }}", 3]
    other:
      type: duckdb
      path: "{{ env_var('ONLY_HERE') }}"
"""


@pytest.mark.parametrize("env", [
    {},
    {"DB_DIR": "/data", "DB_FILE": "x.duckdb", "THREADS": "8", "RETRIES": "5", "READ_ONLY": "True",
     "N": "007", "LIMIT": "3GB", "TAG": "b"},
    {"THREADS": "2.5"},
])
def test_a_duckdb_target_is_rendered_as_dbt_renders_it(tmp_path, env):
    """The light renderer (no dbt import) gives what dbt's own renderer gives, value for value
    and type for type; a variable needed by another target only does not matter."""
    raw = yaml.safe_load(LIGHT_PROFILE)["proj"]
    light = render_profile(raw, None, env)
    assert light == tuple(_rendered_by_dbt(raw, "proj", None, env, tmp_path))
    assert [type(light[1][key]) for key in ("threads", "read_only", "extensions", "schema")] == [
        float if env.get("THREADS") == "2.5" else int, bool, list, str]


def test_the_light_renderer_defers_to_dbt_for_what_it_does_not_know(tmp_path):
    raw = yaml.safe_load(LIGHT_PROFILE)["proj"]
    assert render_profile({**raw, "target": "{{ var('t', 'dev') }}"}, None, {}) is None
    assert render_profile({**raw, "outputs": {"dev": {"type": "duckdb", "path": "{{ target.name }}"}}}, None, {}) is None


def test_a_bad_number_and_a_missing_variable_fail_as_in_dbt(tmp_path):
    raw = yaml.safe_load(LIGHT_PROFILE)["proj"]
    with pytest.raises(ConfigError, match="into type 'number'"):
        render_profile(raw, "dev", {"THREADS": "many"})
    with pytest.raises(ConfigError, match="ONLY_HERE"):
        render_profile(raw, "other", {})


def test_the_committed_duckdb_target_is_read_without_importing_dbt():
    import subprocess
    import sys

    env = {"PUSHER_DUCKDB_PATH": "elsewhere.duckdb", "PUSHER_DBT_MEMORY_LIMIT": "3GB"}
    raw = yaml.safe_load((REPO / "profiles.yml").read_text())["retention"]
    assert load_profile(REPO, env=env).settings == _rendered_by_dbt(raw, "retention", None, env, REPO)[1]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; from pusher.warehouse import load_profile; "
         f"p = load_profile(Path({str(REPO)!r}), env={{}}); print(p.settings['type'], 'dbt.config' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["duckdb", "False"]

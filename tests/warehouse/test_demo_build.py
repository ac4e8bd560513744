"""The demo world builds green, and the exclusivity/freshness/single-writer tests can fail."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from tests.conftest import copy_project


def test_demo_build_passes_every_model_and_test(demo_warehouse):
    build = demo_warehouse.build
    assert build.not_passing() == [], build.output()
    assert build.completed.returncode == 0, build.output()
    kinds = {}
    for result in build.results:
        kinds.setdefault(result["unique_id"].split(".")[0], 0)
        kinds[result["unique_id"].split(".")[0]] += 1
    assert kinds["seed"] == 11  # the ten raw tables and dbt_project_evaluator_exceptions
    assert kinds["unit_test"] >= 12
    assert kinds["test"] > 150


def test_every_generic_rule_was_applied(demo_warehouse):
    ids = [result["unique_id"] for result in demo_warehouse.build.results]
    assert any("mutually_exclusive_audience_membership_customer_id" in i for i in ids)
    assert sum("audience_matches_its_syncs_aud_" in i for i in ids) >= 14
    assert sum("single_writer_" in i for i in ids) >= 5
    assert sum("state_freshness_" in i for i in ids) >= 4


@pytest.fixture(scope="module")
def broken_run(demo_warehouse, dbt_runner, tmp_path_factory):
    """One dbt test run over deliberately broken inputs, so each custom generic test must fail:
    a member in two audiences of one group, an as_of long after every state timestamp, a
    second model claiming an attribute the loyalty system owns, an aud_ model with neither
    its _audiences.yml entry nor a sync exposure, and a sync whose list name
    differs from its model's."""
    workdir = tmp_path_factory.mktemp("broken")
    project = workdir / "project"
    copy_project(project, singular_tests=False)
    (project / "models" / "rogue_vip_tier.sql").write_text(
        "select customer_id, vip_tier from {{ ref('int_loyalty__state') }}\n")
    (project / "models" / "_rogue.yml").write_text(
        "models:\n  - name: rogue_vip_tier\n    columns:\n"
        "      - name: vip_tier\n        meta: {owner: store}\n")
    (project / "models" / "marts" / "aud_rogue_unregistered.sql").write_text(
        "select * from {{ ref('aud_vip_high_ltv') }}\n")
    # a sync whose list name drifted from the one the model writes
    for yml in (project / "models" / "marts").glob("*.yml"):
        yml.write_text(yml.read_text().replace("MSADS__VIP_High_LTV_Current", "MSADS__VIP_High_LTV_Renamed"))
    database = workdir / "broken.duckdb"
    shutil.copy(demo_warehouse.database, database)
    with duckdb.connect(str(database)) as con:
        # C9001 is in aud_cart_abandon_0_1d; put them in the 1-3 d audience of the same group too
        con.execute("""
            insert into audience_membership
            select customer_id, email_sha256, phone_sha256, 'aud_cart_abandon_1_3d',
                'Cart_Abandon_1-3d__NoPurchase', exclusivity_group, entered_at
            from audience_membership
            where customer_id = 'C9001' and audience_name = 'aud_cart_abandon_0_1d'
        """)
    run = dbt_runner(workdir, "test", "--select", "test_name:mutually_exclusive",
                  "test_name:state_freshness", "test_name:single_writer",
                  "test_name:audiences_registered", "test_name:audience_matches_its_syncs",
                  database=database, project=project, as_of="2027-06-01 00:00:00")
    assert run.results, run.output()
    return run


def _statuses(run, name: str) -> dict[str, str]:
    return {result["unique_id"]: result["status"] for result in run.results if name in result["unique_id"]}


def test_exclusivity_test_fails_when_a_member_is_in_two_audiences_of_a_group(broken_run):
    results = [r for r in broken_run.results if "mutually_exclusive" in r["unique_id"]]
    assert len(results) == 1, broken_run.output()
    # one failing member; the test checks every group at once
    assert (results[0]["status"], results[0]["failures"]) == ("fail", 1), results
    assert broken_run.completed.returncode != 0


def test_state_freshness_fails_when_state_is_old(broken_run):
    statuses = _statuses(broken_run, "state_freshness")
    assert len(statuses) >= 4, broken_run.output()
    assert set(statuses.values()) == {"fail"}, statuses


def test_single_writer_fails_when_a_second_model_claims_an_attribute(broken_run):
    statuses = _statuses(broken_run, "single_writer")
    failed = sorted(uid for uid, status in statuses.items() if status == "fail")
    assert len(failed) == 1 and "vip_tier" in failed[0], statuses
    assert len(statuses) >= 5


def test_unregistered_audience_fails_the_registry_test(broken_run):
    results = [r for r in broken_run.results if "audiences_registered" in r["unique_id"]]
    assert len(results) == 1, broken_run.output()
    # no entry in _audiences.yml (so no contract) and no sync exposure
    assert (results[0]["status"], results[0]["failures"]) == ("fail", 2)


def test_registry_test_passes_on_the_real_project(demo_warehouse):
    results = [r for r in demo_warehouse.build.results if "audiences_registered" in r["unique_id"]]
    assert [r["status"] for r in results] == ["pass"]


def test_a_sync_list_name_that_differs_from_the_models_fails(broken_run):
    statuses = _statuses(broken_run, "audience_matches_its_syncs")
    assert len(statuses) >= 14, broken_run.output()
    failed = [uid for uid, status in statuses.items() if status == "fail"]
    assert len(failed) == 1 and "aud_vip_high_ltv" in failed[0], statuses

"""Adding an audience as the README says takes two edits: its SQL file and its block in
_audiences.yml. A copy of the project with one new audience builds green, the audience is in
audience_membership and its sync is an exposure in the manifest the pusher reads."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_project

REPO = Path(__file__).resolve().parents[2]

AUDIENCE_SQL = """\
with

profile as (select * from {{ ref('customer_profile') }}),

members_selected as (
    select
        customer_id,
        email_sha256,
        phone_sha256,
        loyalty_points_updated_at as entered_at
    from profile
    where loyalty_points >= 500
        and loyalty_points_updated_at is not null
        and is_treatment_eligible
),

final as (
    select
        {{ audience_columns('aud_loyalty_points_500_plus', 'Loyalty_Points_500-Plus_Current') }}
    from members_selected
)

select * from final
"""

MODEL_ENTRY = """\
  - <<: *audience
    name: aud_loyalty_points_500_plus
    description: At least 500 loyalty points. Treatment audience.
"""

EXPOSURE_ENTRY = """\
  - {<<: *cio_segment, name: cio_segment_loyalty_points_500_plus, depends_on: ["ref('aud_loyalty_points_500_plus')"],
     meta: {pusher: {<<: *cio_segment_sync, cadence: 1d, list_name: CIO__Loyalty_Points_500-Plus_Current}}}
"""


@pytest.fixture(scope="module")
def added(dbt_runner, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("add-audience")
    project = workdir / "project"
    copy_project(project, singular_tests=False)
    # edit 1: the SQL file
    (project / "models" / "marts" / "aud_loyalty_points_500_plus.sql").write_text(AUDIENCE_SQL)
    # edit 2: its block in _audiences.yml (model entry and exposure)
    audiences_yml = project / "models" / "marts" / "_audiences.yml"
    text = audiences_yml.read_text()
    assert text.count("\nmodels:\n") == 1 and text.count("\nexposures:\n") == 1
    text = text.replace("\nmodels:\n", "\nmodels:\n" + MODEL_ENTRY)
    text = text.replace("\nexposures:\n", "\nexposures:\n" + EXPOSURE_ENTRY)
    audiences_yml.write_text(text)
    database = workdir / "added.duckdb"
    run = dbt_runner(workdir, "build", database=database, project=project)
    return run, database, workdir / "target" / "manifest.json"


def test_the_project_with_a_new_audience_builds_green(added):
    run, _, _ = added
    assert run.not_passing() == [], run.output()
    assert run.completed.returncode == 0, run.output()
    ids = {result["unique_id"] for result in run.results}
    assert "model.retention.aud_loyalty_points_500_plus" in ids
    # its contract, tests and registration came from the anchors and the dbt graph
    assert any("audience_matches_its_syncs_aud_loyalty_points_500_plus" in i for i in ids)
    assert any("unique_aud_loyalty_points_500_plus_customer_id" in i for i in ids)
    assert any("audiences_registered_audience_membership" in i for i in ids)


def test_the_new_audience_is_in_audience_membership(added):
    _, database, _ = added
    with duckdb.connect(str(database), read_only=True) as con:
        members = con.execute("select count(*) from aud_loyalty_points_500_plus").fetchone()[0]
        in_union = con.execute("""
            select count(*) from audience_membership
            where audience_name = 'aud_loyalty_points_500_plus'
                and list_name = 'Loyalty_Points_500-Plus_Current'
        """).fetchone()[0]
    assert members > 0
    assert in_union == members


def test_its_sync_is_an_exposure_in_the_manifest(added):
    _, _, manifest_path = added
    manifest = json.loads(manifest_path.read_text())
    exposure = manifest["exposures"]["exposure.retention.cio_segment_loyalty_points_500_plus"]
    assert exposure["depends_on"]["nodes"] == ["model.retention.aud_loyalty_points_500_plus"]
    assert exposure["meta"]["pusher"] == {
        "destination": "customerio", "kind": "audience", "max_remove_share": 0.2, "max_row_attempts": 5,
        "cadence": "1d", "list_name": "CIO__Loyalty_Points_500-Plus_Current",
    }
    model = manifest["nodes"]["model.retention.aud_loyalty_points_500_plus"]
    assert model["access"] == "public" and model["config"]["contract"]["enforced"]


def test_audience_membership_reads_the_declared_audiences_and_evaluates_the_new_one(added):
    """The shipped audiences are declared parents of audience_membership, built before it, so it
    reads their tables; the new one is not (adding it took no third edit), so its SQL is evaluated
    in place and dbt's build order cannot make the union miss it."""
    _, _, manifest_path = added
    manifest = json.loads(manifest_path.read_text())
    parents = manifest["nodes"]["model.retention.audience_membership"]["depends_on"]["nodes"]
    shipped = sorted(path.stem for path in (REPO / "models" / "marts").glob("aud_*.sql"))
    assert shipped and all(f"model.retention.{name}" in parents for name in shipped)
    assert "model.retention.aud_loyalty_points_500_plus" not in parents
    compiled = (manifest_path.parent / "compiled" / "retention" / "models" / "marts"
                / "audience_membership.sql").read_text()
    for name in shipped:
        assert f'{name} as (\n    select * from "added"."main"."{name}"\n)' in compiled, name
    assert "loyalty_points >= 500" in compiled

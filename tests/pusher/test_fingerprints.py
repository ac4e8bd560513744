"""The model's member_fingerprint column: used when it agrees with the pusher's own
fingerprint, refused row by row when it does not, and replaced by the pusher's own (with a
warning) when the whole column is unusable."""

from __future__ import annotations

import pytest

from pusher.errors import EXIT_CONFIG_ERROR, EXIT_OK
from pusher.ledger import table

from .conftest import Project, sha
from .test_ledger_identifiers import log_records

STORED = "cast(hash(customer_id, email_sha256, phone_sha256) >> 1 as bigint)"   # the macro, on DuckDB


@pytest.fixture
def plain(tmp_path) -> Project:
    """An audience with a stored (not generated) member_fingerprint column the test can spoil."""
    project = Project(tmp_path)
    project.sql("alter table aud_cart add column member_fingerprint bigint")
    return project


def fill_fingerprints(project: Project) -> None:
    project.sql(f"update aud_cart set member_fingerprint = {STORED}")


def plan_of(project: Project) -> dict:
    return project.plan().outcomes[0].plan


def test_a_matching_column_is_used_and_gives_the_same_plan(plain):
    plain.set_audience_range(0, 50)
    fill_fingerprints(plain)
    assert plain.sync().exit_code == EXIT_OK
    plain.set_audience_range(10, 60)
    fill_fingerprints(plain)
    with_column = plan_of(plain)
    assert (with_column["adds"], with_column["removes"]) == (10, 10) and not with_column["warnings"]
    plain.sql("alter table aud_cart drop column member_fingerprint")
    without_column = plan_of(plain)
    assert with_column == without_column


@pytest.mark.parametrize("spoil, words", [
    ("update aud_cart set member_fingerprint = 42", "of the first rows differ"),
    ("update aud_cart set member_fingerprint = null where customer_id = 'c000007'", "1 are NULL"),
])
def test_an_unusable_column_is_replaced_by_the_pushers_fingerprint(plain, spoil, words):
    plain.set_audience_range(0, 30)
    fill_fingerprints(plain)
    plain.sync()
    plain.set_audience_range(0, 40)          # 10 joined
    fill_fingerprints(plain)
    plain.sql(spoil)
    plan = plan_of(plain)
    assert (plan["adds"], plan["removes"]) == (10, 0)
    assert any(words in warning and "member_fingerprint is not usable" in warning for warning in plan["warnings"])
    report = plain.sync()
    assert report.exit_code == EXIT_OK and report.outcomes[0].sent["adds"] == 10
    assert plain.listed() == plain.audience() == plain.ledger()
    assert plain.sync().outcomes[0].requests == 0


def test_a_wrong_fingerprint_on_a_row_to_add_stops_the_sync_and_names_it(plain):
    # Beyond the sampled first rows, so only the check of the rows to add can see it.
    plain.set_audience_range(0, 5000)
    fill_fingerprints(plain)
    assert plain.sync().exit_code == EXIT_OK
    sent = len(log_records(plain))
    plain.sql("insert into aud_cart values ('c999999', ?, null, 'aud_cart', 'Cart', null, now(), 7)",
              [sha("new@example.com")])
    report = plain.sync()
    assert report.exit_code == EXIT_CONFIG_ERROR
    message = report.outcomes[0].message
    assert "member_fingerprint" in message and "c999999" in message, message
    assert len(log_records(plain)) == sent                       # nothing sent
    fill_fingerprints(plain)
    assert plain.sync().outcomes[0].sent["adds"] == 1


def test_an_unsigned_fingerprint_ledger_is_migrated_without_resending(tmp_path):
    """Ledgers from before the signed 64-bit fingerprints are recomputed once, not resent."""
    project = Project(tmp_path, model_fingerprint=True)
    project.set_audience_range(0, 25)
    project.sync()
    for name in ("members", "pending_removals"):
        project.sql(f"alter table {table(name)} drop column fingerprint")
        project.sql(f"alter table {table(name)} add column fingerprint ubigint")
    project.sql(f"update {table('members')} set fingerprint = hash(member_key, email_sha256, phone_sha256)")
    report = project.sync()
    assert report.exit_code == EXIT_OK and report.outcomes[0].requests == 0
    assert project.sql("select data_type from information_schema.columns where table_schema = 'pusher_ledger' "
                       "and table_name in ('members', 'pending_removals') and column_name = 'fingerprint'") == [("BIGINT",), ("BIGINT",)]
    assert project.ledger() == project.audience()

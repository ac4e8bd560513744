"""Pure logic: sync definition validation, changed attributes, batching, wire values, guards."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from pusher import guards
from pusher.config import SyncDefinition, syncs_from_manifest, validate_pusher_meta
from pusher.destinations.base import chunked
from pusher.diff import changed_attributes
from pusher.errors import ConfigError
from pusher.plan import DestinationLimits, SyncPlan, batch_size_for, estimate
from pusher.sync import most_severe
from pusher.timeconv import to_wire, unix_seconds
from pusher.warehouse import quote_ident

GOOD = {"destination": "microsoft_ads", "kind": "audience", "list_name": "MSADS__Lapsed_90-120d__NoPurchase"}


def manifest(meta, depends=("model.p.aud_x",)):
    return {"nodes": {"model.p.aud_x": {"name": "aud_x", "alias": "aud_x", "database": "db", "schema": "main"}},
            "exposures": {"exposure.p.sync_x": {"name": "sync_x", "meta": {"pusher": meta},
                                                "depends_on": {"nodes": list(depends)}}}}


def test_valid_definition_from_manifest():
    [sync] = syncs_from_manifest(manifest({**GOOD, "max_remove_share": 0.1, "min_audience_size": 300}))
    assert sync.relation == ("db", "main", "aud_x") and sync.max_remove_share == 0.1
    assert sync.min_audience_size == 300 and sync.max_row_attempts == 5


@pytest.mark.parametrize("change, words", [
    ({"destination": "hubspot"}, ["destination", "hubspot"]),
    ({"kind": "people"}, ["kind", "microsoft_ads"]),
    ({"list_name": None}, ["list_name", "required"]),
    ({"list_name": "CIO__X"}, ["list_name", "MSADS__"]),
    ({"list_name": "MSADS__x'; drop table y; --"}, ["list_name", "quotes"]),
    ({"list_name": "MSADS__a\nb"}, ["list_name"]),
    ({"list_name": "MSADS__" + "a" * 130}, ["list_name", "128"]),
    ({"max_remove_share": 1.5}, ["max_remove_share", "between"]),
    ({"max_remove_share": "lots"}, ["max_remove_share", "number"]),
    ({"max_row_attempts": True}, ["max_row_attempts", "integer"]),
    ({"min_audience_size": -1}, ["min_audience_size"]),
    ({"list_nmae": "x"}, ["unknown field", "list_nmae"]),
])
def test_invalid_definitions_name_sync_and_field(change, words):
    meta = {**GOOD, **change}
    with pytest.raises(ConfigError) as error:
        validate_pusher_meta("sync_x", meta)
    message = str(error.value)
    assert "sync_x" in message
    for word in words:
        assert word in message


def test_exposure_must_depend_on_one_model():
    with pytest.raises(ConfigError, match="sync_x: depends_on must name exactly one model"):
        syncs_from_manifest(manifest(GOOD, depends=()))


def test_two_syncs_may_not_own_one_list():
    data = manifest(GOOD)
    data["exposures"]["exposure.p.sync_y"] = {**data["exposures"]["exposure.p.sync_x"], "name": "sync_y"}
    with pytest.raises(ConfigError, match="already written by sync"):
        syncs_from_manifest(data)


def test_changed_attributes_sends_only_changes_and_known_clears():
    previous = {"a": 1, "b": "x", "c": None, "d": True}
    current = {"a": 1, "b": None, "c": None, "d": 1, "e": None, "f": "new"}
    assert changed_attributes(current, previous) == {"b": None, "d": 1, "f": "new"}
    assert changed_attributes({"a": None, "b": 2}, None) == {"b": 2}       # new person: no NULLs
    assert changed_attributes({"a": 1}, {"a": 1}) == {}


def test_wire_values():
    assert unix_seconds(dt.datetime(2024, 1, 1)) == 1704067200
    assert unix_seconds(dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == 1704067200
    assert unix_seconds(dt.date(2024, 1, 2)) == 1704153600
    assert to_wire(decimal.Decimal("12.50")) == 12.5 and to_wire(decimal.Decimal("3")) == 3
    assert to_wire(2.0) == 2 and to_wire(None) is None and to_wire(True) is True


def test_batching_and_estimates():
    assert [len(b) for b in chunked(range(2501), 1000)] == [1000, 1000, 501]
    assert estimate([2500, 0, 10], 1000, 10.0) == (4, 0.4)
    sync = SyncDefinition("s", "m", "model.p.m", ("d", "s", "m"), "file", "audience", "FILE__X", batch_size=300)
    assert batch_size_for(sync, DestinationLimits(max_members_per_request=1000), env={}) == 300
    assert batch_size_for(sync, DestinationLimits(), env={"PUSHER_BATCH_SIZE": "50"}) == 50


def test_quote_ident_cannot_break_out():
    assert quote_ident('we"ird') == '"we""ird"'


def test_exit_code_severity():
    assert most_severe([0, 3, 4]) == 4 and most_severe([6, 1, 5]) == 1 and most_severe([]) == 0


def test_remove_share_guard_math():
    sync = SyncDefinition("s", "m", "model.p.m", ("d", "s", "m"), "file", "audience", "FILE__X")
    plan = SyncPlan("s", "audience", "file", "FILE__X", ledger_size=100, departures=20)
    assert guards.remove_share(sync, plan) is None                    # exactly 20% is allowed
    plan.departures = 21
    assert "21 of 100" in guards.remove_share(sync, plan)
    assert guards.remove_share(sync, SyncPlan("s", "audience", "file", None, ledger_size=0)) is None


def test_failed_test_guard_follows_ancestors():
    sync = SyncDefinition("s", "aud", "model.p.aud", ("d", "s", "aud"), "file", "audience", "FILE__X")
    data = {"parent_map": {"model.p.aud": ["model.p.mid"], "model.p.mid": ["model.p.stg"]},
            "nodes": {"test.p.unique_stg_id.1": {"attached_node": "model.p.stg",
                                                 "depends_on": {"nodes": ["model.p.stg"]}},
                      "test.p.other.2": {"depends_on": {"nodes": ["model.p.unrelated"]}}}}
    ok = {"results": [{"unique_id": "test.p.unique_stg_id.1", "status": "pass"},
                      {"unique_id": "test.p.other.2", "status": "fail"}]}
    assert guards.failed_tests(sync, data, ok) is None
    bad = {"results": [{"unique_id": "test.p.unique_stg_id.1", "status": "fail"}]}
    assert "unique_stg_id" in guards.failed_tests(sync, data, bad)
    errored = {"results": [{"unique_id": "model.p.mid", "status": "error"}]}
    assert "model.p.mid error" in guards.failed_tests(sync, data, errored)


def test_registry_builds_the_file_destination_and_names_unknown_kinds(tmp_path):
    from pusher.destinations import registry
    from pusher.destinations.file import FileDestination

    built = registry.build("file", {"PUSHER_FILE_DIR": str(tmp_path)})
    assert isinstance(built, FileDestination) and built.directory == tmp_path
    with pytest.raises(ConfigError, match="unknown destination"):
        registry.build("hubspot", {})


@pytest.mark.parametrize("torn", [b'{"op":"add","members":[{"id":"c9","email', b'{"op":"add"' * 20000])
def test_file_destination_cuts_a_torn_last_line_before_appending(tmp_path, torn):
    """A kill mid-write leaves a line without its newline; the next record must not be glued to it."""
    from pusher.destinations.base import ListRef, Member
    from pusher.destinations.file import FileDestination, read_list

    destination = FileDestination(tmp_path)
    ref = ListRef("FILE__X")
    destination.ensure_list(ref)
    destination.add_members(ref, [Member("c1", "a" * 64)])
    with open(tmp_path / "lists" / "FILE__X.jsonl", "ab") as handle:
        handle.write(torn)
    destination.add_members(ref, [Member("c2", "b" * 64)])
    assert read_list(tmp_path, "FILE__X") == {"c1": ("a" * 64, None), "c2": ("b" * 64, None)}

"""Pure tests of the bulk file: what we write is well formed, what we read is understood."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from msads_helpers import members, sha

from pusher.destinations.base import Member
from pusher.destinations.msads_bulk_file import (
    BOM, HEADER, BulkFileError, ListRow, build_rows, build_upload, check_audience_name, check_hashes,
    read_bulk_file, read_outcome, write_csv, zip_csv,
)
from pusher.errors import InputError


def test_upload_is_a_zip_of_one_bom_csv_with_header_and_format_version():
    hashes = [m.email_sha256 for m in members(3)]
    data = build_upload(ListRow("123", action_type="Remove", accept_terms=True), hashes)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert len(names) == 1 and names[0].endswith(".csv")
        raw = archive.read(names[0])
    assert raw.startswith(BOM.encode("utf-8"))
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == HEADER
    assert rows[1][0] == "Format Version" and rows[1][HEADER.index("Name")] == "6.0"
    records = [dict(zip(HEADER, r)) for r in rows[2:]]
    assert records[0]["Type"] == "Customer List" and records[0]["Id"] == "123"
    assert records[0]["Action Type"] == "Remove" and records[0]["Accept Customer Match Term"] == "True"
    assert [r["Text"] for r in records[1:]] == hashes
    assert {r["Type"] for r in records[1:]} == {"Customer List Item"}
    assert {r["Sub Type"] for r in records[1:]} == {"Email"}
    assert {r["Parent Id"] for r in records[1:]} == {"123"}
    # Customer keys never leave: items are numbered by position instead.
    assert [r["Client Id"] for r in records[1:]] == ["i0", "i1", "i2"]


def test_the_bingads_sdk_reads_our_file_back(tmp_path):
    import bingads.v13.bulk as bulk  # the official SDK (dev dependency) as an independent reader
    from bingads.v13.bulk.entities.audiences.bulk_customer_list import BulkCustomerList
    from bingads.v13.bulk.entities.audiences.bulk_customer_list_item import BulkCustomerListItem

    hashes = [m.email_sha256 for m in members(2)]
    path = tmp_path / "upload.csv"
    path.write_bytes(write_csv(build_rows(ListRow("-1", "MSADS__Lapsed", "Add", accept_terms=True,
                                                  membership_duration=-1), hashes)))
    with bulk.BulkFileReader(str(path), result_file_type=bulk.ResultFileType.upload, file_type="Csv") as reader:
        entities = list(reader)
    assert isinstance(entities[0], BulkCustomerList)
    assert entities[0].customer_list.Id == -1 and entities[0].customer_list.Name == "MSADS__Lapsed"
    assert entities[0].customer_list.MembershipDuration == -1 and entities[0].action_type == "Add"
    items = entities[1:]
    assert all(isinstance(e, BulkCustomerListItem) for e in items)
    assert [(e.parent_id, e.sub_type, e.text) for e in items] == [(-1, "Email", h) for h in hashes]


@pytest.mark.parametrize("bad", ["Someone@Example.com", sha("a@b.c").upper(), sha("a@b.c")[:63], "", None,
                                 sha("a@b.c") + " "])
def test_check_hashes_refuses_anything_but_64_lowercase_hex_and_names_the_key(bad):
    batch = members(2) + [Member(key="cust-42", email_sha256=bad)]
    with pytest.raises(InputError) as err:
        check_hashes(batch)
    assert "cust-42" in str(err.value)
    if bad and bad.strip():
        assert bad.strip() not in str(err.value)   # the offending value is never echoed


def test_check_hashes_accepts_proper_hashes():
    check_hashes(members(5))


def test_audience_name_limit():
    check_audience_name("x" * 128)
    with pytest.raises(InputError):
        check_audience_name("x" * 129)


def test_reader_requires_bom_and_format_version():
    good = write_csv([])
    read_bulk_file(zip_csv(good))
    with pytest.raises(BulkFileError) as no_bom:
        read_bulk_file(zip_csv(good[3:]))
    assert no_bom.value.status == "Failed"
    wrong_version = good.replace(b"6.0", b"5.0")
    with pytest.raises(BulkFileError) as version:
        read_bulk_file(zip_csv(wrong_version))
    assert version.value.code == 3217
    with pytest.raises(BulkFileError) as not_zip:
        read_bulk_file(b"PK not really a zip")
    assert not_zip.value.status == "UploadFileFormatNotSupported"


def test_read_outcome_maps_error_rows_to_item_positions():
    header = HEADER + ["Error", "Error Number"]
    rows = [
        {"Type": "Customer List", "Id": "555", "Client Id": "list"},
        {"Type": "Customer List Item", "Client Id": "i0", "Parent Id": "555"},
        {"Type": "Customer List Item", "Client Id": "i1", "Parent Id": "555"},
        {"Type": "Customer List Item Error", "Client Id": "i1", "Error": "CustomerListEmailMustBeHashed",
         "Error Number": "8004"},
    ]
    _, records = read_bulk_file(zip_csv(write_csv(rows, header)))
    outcome = read_outcome(records)
    assert outcome.list_id == "555" and outcome.list_error is None
    assert outcome.item_errors == {1: "8004 CustomerListEmailMustBeHashed"}
    assert outcome.items_seen == {0, 1}


def test_read_outcome_reports_a_failed_list_row():
    outcome = read_outcome([{"Type": "Customer List", "Id": "-1", "Client Id": "list"},
                            {"Type": "Customer List Error", "Id": "-1", "Error": "CustomerListTermsNotAccepted",
                             "Error Number": "8003"}])
    assert outcome.list_error == "8003 CustomerListTermsNotAccepted"


def test_build_rows_refuses_unknown_action_type():
    with pytest.raises(ValueError):
        build_rows(ListRow("1", action_type="Upsert"), [])


# ---- every kind of file the destination really uploads, read by the official SDK -------------

def sdk_read(tmp_path, zip_bytes: bytes, name: str) -> list:
    import bingads.v13.bulk as bulk

    path = tmp_path / f"{name}.csv"
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        [inner] = archive.namelist()
        path.write_bytes(archive.read(inner))
    with bulk.BulkFileReader(str(path), result_file_type=bulk.ResultFileType.upload, file_type="Csv") as reader:
        return list(reader)


def uploaded_files(emulator) -> list[bytes]:
    import base64

    from msads_helpers import HTTP

    return [base64.b64decode(f) for f in HTTP.get(emulator.base + "/_emulator/uploads").json()["files"]]


@pytest.mark.parametrize("settings", [{}, {"MSADS_ACCEPT_TERMS": "true", "MSADS_MEMBERSHIP_DURATION": "30"}])
def test_the_sdk_reads_every_kind_of_file_the_destination_uploads(emulator, make_destination, tmp_path, settings):
    from bingads.v13.bulk.entities.audiences.bulk_customer_list import BulkCustomerList
    from bingads.v13.bulk.entities.audiences.bulk_customer_list_item import BulkCustomerListItem

    from pusher.destinations.base import ListRef

    dest = make_destination(emulator, MSADS_APPLY_MAX_ITEMS="0", MSADS_MAX_ROWS_PER_FILE="3", **settings)
    name = "MSADS__Every_Kind"
    ref = ListRef(name, dest.ensure_list(ListRef(name)))                    # new list
    list_id = int(ref.external_id)
    dest.add_members(ref, members(2))                                       # existing list, Add
    dest.remove_members(ref, members(1))                                    # Remove
    dest.add_members(ref, members(5, start=10), replace=True)               # Replace over two files
    dest.add_members(ref, [], replace=True)                                 # Replace with nobody: wipe
    files = uploaded_files(emulator)
    kinds = ["new list", "add", "remove", "replace", "replace, second file", "wipe"]
    assert len(files) == len(kinds)
    expected = {"add": ("Add", members(2)), "remove": ("Remove", members(1)),
                "replace": ("Replace", members(3, start=10)), "replace, second file": ("Add", members(2, start=13)),
                "wipe": ("Replace", [])}
    for kind, data in zip(kinds, files):
        entities = sdk_read(tmp_path, data, kind.replace(" ", "_").replace(",", ""))
        head, items = entities[0], entities[1:]
        assert isinstance(head, BulkCustomerList), kind
        assert all(isinstance(item, BulkCustomerListItem) for item in items), kind
        if kind == "new list":
            assert head.customer_list.Id < 0 and head.customer_list.Name == name and head.action_type == "Add"
            assert head.customer_list.Scope == "Customer"
            assert head.customer_list.MembershipDuration == int(settings.get("MSADS_MEMBERSHIP_DURATION", -1))
            assert items == []
            continue
        action, sent = expected[kind]
        assert head.customer_list.Id == list_id and head.action_type == action, kind
        assert [(i.parent_id, i.sub_type, i.text) for i in items] == [(list_id, "Email", m.email_sha256) for m in sent]
    # The terms cell (a column this SDK version does not map): empty unless set, then as given.
    terms = "True" if settings.get("MSADS_ACCEPT_TERMS") else ""
    for data in files:
        _, records = read_bulk_file(data)
        assert records[0]["Accept Customer Match Term"] == terms

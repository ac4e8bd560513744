"""Microsoft Advertising bulk files for Customer Match: build uploads, read files back. No I/O.

The upload is a ZIP holding one CSV: UTF-8 with a BOM, a header row, a `Format Version`
row with `Name` = 6.0, then one `Customer List` row followed by its `Customer List Item`
rows (column names from the bingads SDK string table). Result files have the same columns
plus `Error` and `Error Number`; a failed record is followed by `<Type> Error` rows (the
SDK's BulkError convention), so errors are matched to records through `Client Id`.

Item rows carry `Client Id` = "i<n>" (their position in the file), never the customer key:
the key stays local and the result file is mapped back through that position.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Iterable, Sequence

from pusher.destinations.base import Member
from pusher.errors import InputError

BOM = "\ufeff"
FORMAT_VERSION = "6.0"
HEADER = [
    "Type", "Status", "Id", "Parent Id", "Client Id", "Modified Time", "Name", "Description",
    "Scope", "Audience", "Action Type", "Accept Customer Match Term", "Membership Duration",
    "Sub Type", "Text",
]
RESULT_EXTRA = ["Error", "Error Number"]
LIST_TYPE = "Customer List"
ITEM_TYPE = "Customer List Item"
FORMAT_TYPE = "Format Version"
ACTION_TYPES = ("Add", "Remove", "Replace")
SCOPES = ("Customer",)             # the Customer List record allows only the Customer scope
MAX_FILE_ROWS = 4_000_000          # documented limit per upload file in production
SANDBOX_FILE_ROWS = 20_000         # and in the sandbox
MAX_FILE_BYTES = 100_000_000       # documented 100 MB per upload file (read as the CSV, the stricter)
NON_ITEM_ROWS = 2                  # the Format Version row and the Customer List row
MAX_AUDIENCE_NAME = 128
HASH_RE = re.compile(r"[0-9a-f]{64}")
NEW_LIST_REF = "-1"                # negative Id: a reference to the list created in this file


class BulkFileError(ValueError):
    """A bulk file that cannot be read (not a ZIP, no BOM, wrong header or format version)."""

    def __init__(self, status: str, code: int, error_code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.error_code, self.message = status, code, error_code, message


@dataclass(frozen=True)
class ListRow:
    """The `Customer List` record that heads every upload."""

    list_id: str                      # the list's id, or a negative reference when creating it
    audience: str = ""                # list name: required on create, optional on update
    action_type: str = "Add"          # Add | Remove | Replace
    scope: str = "Customer"
    accept_terms: bool | None = None  # None = empty: use the terms accepted in the UI; False fails (8003)
    membership_duration: int | None = None   # days; None = the service default (30); -1 = never


def check_hashes(members: Sequence[Member]) -> None:
    """Refuse the whole batch if any email_sha256 is not 64 lowercase hex (a raw email, say)."""
    for member in members:
        value = member.email_sha256
        if value is None or not HASH_RE.fullmatch(value):
            what = "is missing" if value is None else "is not 64 lowercase hex characters (SHA-256)"
            raise InputError(
                f"customer {member.key!r}: email_sha256 {what}; nothing was sent to Microsoft "
                "Advertising. Hash the trimmed lower-cased email in the warehouse model")


def check_audience_name(name: str) -> None:
    if not name or len(name) > MAX_AUDIENCE_NAME:
        raise InputError(f"Microsoft Advertising list name {name[:40]!r}... must be 1-{MAX_AUDIENCE_NAME} "
                         f"characters (it has {len(name)}); shorten list_name in the exposure")


def item_client_id(position: int) -> str:
    return f"i{position}"


def terms_value(accept: bool | None) -> str:
    """The `Accept Customer Match Term` cell: empty unless the user said true or false."""
    return "" if accept is None else ("True" if accept else "False")


def build_rows(list_row: ListRow, hashes: Sequence[str]) -> list[dict[str, str]]:
    """The records of one upload (without header/format rows), as column -> value."""
    if list_row.action_type not in ACTION_TYPES:
        raise ValueError(f"action type must be one of {ACTION_TYPES}, not {list_row.action_type!r}")
    duration = list_row.membership_duration
    rows = [{
        "Type": LIST_TYPE, "Status": "Active", "Id": list_row.list_id, "Client Id": "list",
        "Scope": list_row.scope, "Audience": list_row.audience, "Action Type": list_row.action_type,
        "Accept Customer Match Term": terms_value(list_row.accept_terms),
        "Membership Duration": "" if duration is None else str(duration),
    }]
    for position, value in enumerate(hashes):
        rows.append({"Type": ITEM_TYPE, "Parent Id": list_row.list_id,
                     "Client Id": item_client_id(position), "Sub Type": "Email", "Text": value})
    return rows


def items_per_file(list_row: ListRow, max_items: int, max_bytes: int) -> int:
    """How many item rows fit one file under both limits. Item rows differ only in their
    Client Id, so the longest one (the last position) bounds them all."""
    overhead = len(write_csv(build_rows(list_row, [])))
    widest = len(write_csv(build_rows(list_row, ["0" * 64])[1:], with_header=False))
    widest += len(str(max_items)) - 1          # "i0" -> "i<max_items-1>" at worst
    fit = (max_bytes - overhead) // widest
    if fit < 1:
        raise ValueError(f"a file of at most {max_bytes} bytes cannot hold one member")
    return min(max_items, fit)


def write_csv(rows: Iterable[dict[str, str]], header: Sequence[str] = HEADER, *, with_header: bool = True) -> bytes:
    """UTF-8 with BOM: header, Format Version 6.0 row, then the rows (with_header=False: the
    rows alone, to measure them)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), restval="", extrasaction="ignore",
                            lineterminator="\r\n")
    if with_header:
        writer.writeheader()
        writer.writerow({"Type": FORMAT_TYPE, "Name": FORMAT_VERSION})
    for row in rows:
        writer.writerow(row)
    return ((BOM if with_header else "") + buffer.getvalue()).encode("utf-8")


def zip_csv(csv_bytes: bytes, name: str = "upload.csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, csv_bytes)
    return buffer.getvalue()


def build_upload(list_row: ListRow, hashes: Sequence[str]) -> bytes:
    """The ZIP to POST to an upload URL."""
    return zip_csv(write_csv(build_rows(list_row, hashes)))


def unzip_single_csv(data: bytes) -> bytes:
    """The one CSV inside an upload/result ZIP, or BulkFileError."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if len(names) != 1 or not names[0].lower().endswith(".csv"):
                raise BulkFileError("UploadFileFormatNotSupported", 3218, "BulkServiceInvalidFileFormat",
                                    "the ZIP must hold exactly one .csv file")
            return archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise BulkFileError("UploadFileFormatNotSupported", 3218, "BulkServiceInvalidFileFormat",
                            f"the upload is not a ZIP archive ({exc})") from exc


def read_csv(csv_bytes: bytes, *, require_bom: bool = True) -> tuple[list[str], list[dict[str, str]]]:
    """Header and records (Format Version row checked and dropped), or BulkFileError."""
    if require_bom and not csv_bytes.startswith(BOM.encode("utf-8")):
        raise BulkFileError("Failed", 3220, "BulkServiceInvalidFileEncoding",
                            "the CSV must be UTF-8 with a byte order mark")
    try:
        text = csv_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BulkFileError("Failed", 3220, "BulkServiceInvalidFileEncoding", f"the CSV is not UTF-8 ({exc})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or "Type" not in header:
        raise BulkFileError("Failed", 3219, "BulkServiceInvalidHeader", "the first row must be the column header")
    records = [dict(zip(header, values)) for values in reader if any(v.strip() for v in values)]
    if not records or records[0].get("Type") != FORMAT_TYPE or records[0].get("Name", "") != FORMAT_VERSION:
        found = records[0].get("Name", "") if records and records[0].get("Type") == FORMAT_TYPE else "none"
        raise BulkFileError("Failed", 3217, "BulkServiceFormatVersionNotSupported",
                            f"the second row must be 'Format Version' with Name {FORMAT_VERSION} (found {found})")
    return header, records[1:]


def read_bulk_file(data: bytes, *, require_bom: bool = True) -> tuple[list[str], list[dict[str, str]]]:
    """Read a ZIP (or, for result files, a bare CSV) into header and records."""
    csv_bytes = unzip_single_csv(data) if data[:2] == b"PK" else data
    return read_csv(csv_bytes, require_bom=require_bom)


@dataclass
class UploadOutcome:
    list_id: str | None                  # the list's id as the result file reports it
    list_error: str | None               # "<Error Number> <Error>" if the Customer List row failed
    item_errors: dict[int, str]          # item position -> "<Error Number> <Error>"
    items_seen: set[int]                 # item positions the result file reports (records or errors)


def read_outcome(records: Sequence[dict[str, str]]) -> UploadOutcome:
    """Interpret result-file records: which list id, which item positions failed and why."""
    outcome = UploadOutcome(list_id=None, list_error=None, item_errors={}, items_seen=set())
    for record in records:
        kind = record.get("Type", "")
        client_id = record.get("Client Id", "")
        is_error = kind.endswith(" Error")
        base = kind[: -len(" Error")] if is_error else kind
        reason = f"{record.get('Error Number', '').strip()} {record.get('Error', '').strip()}".strip()
        if base == LIST_TYPE:
            if is_error:
                outcome.list_error = reason or "unknown error"
            elif record.get("Id"):
                outcome.list_id = record["Id"]
        elif base == ITEM_TYPE and client_id.startswith("i") and client_id[1:].isdigit():
            position = int(client_id[1:])
            outcome.items_seen.add(position)
            if is_error or record.get("Error"):
                outcome.item_errors[position] = reason or "unknown error"
    return outcome

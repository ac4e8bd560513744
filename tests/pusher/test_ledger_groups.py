"""Acknowledged batches written together (Ledger.record_batches) leave the ledger exactly as
writing them one by one does: members, identifiers awaiting removal, rejections and one
history row per batch."""

from __future__ import annotations

from pusher.ledger import Acknowledged, BatchRecord, Ledger, _disjoint_groups, table
from pusher.warehouse import Warehouse

from .conftest import sha

TIMESTAMPS = {"members": "acknowledged_at", "pending_removals": "superseded_at", "rejections": "last_at",
              "batches": "recorded_at"}


def ack(i: int, email: str | None = None, phone: str | None = None) -> Acknowledged:
    return Acknowledged(f"c{i:06d}", sha(email or f"user{i}@example.com"), phone)


def batches_of_a_run() -> list[tuple[str, bool, list[BatchRecord]]]:
    """(op, replaces_rows, batches) in run order: removes, then adds mixing new members, changed
    identifiers, a key repeated in a later batch, and rejections."""
    removes = [BatchRecord(1, 2, [ack(0)], {"c000001": ("invalid", "/")}),
               BatchRecord(2, 2, [ack(2), ack(3)], {})]
    adds = [BatchRecord(3, 3, [ack(10, "new10@example.com"), ack(11)], {"c000012": ("bad email", "x")}),
            BatchRecord(4, 2, [ack(13), ack(14, phone=sha("+15550000014"))], {}),
            BatchRecord(5, 2, [ack(10, "newer10@example.com"), ack(15)], {}),     # c000010 again
            BatchRecord(6, 1, [ack(12)], {})]                                     # its rejection cleared
    return [("remove", True, removes), ("add", True, adds)]


def ledger_rows(wh: Warehouse) -> dict[str, list[tuple]]:
    return {name: sorted(wh.fetchall(f"select * exclude ({stamp}) from {table(name)}"), key=repr)
            for name, stamp in TIMESTAMPS.items()}


def seeded(tmp_path, name: str) -> tuple[Warehouse, Ledger]:
    wh = Warehouse.open_duckdb(tmp_path / f"{name}.duckdb", tmp_path / f"{name}-state.duckdb")
    ledger = Ledger(wh)
    ledger.ensure()
    ledger.record_batch("r0", "s", 1, "add", 20, [ack(i) for i in range(20)], {}, replaces_rows=False)
    ledger.record_batch("r0", "s", 2, "add", 1, [], {"c000001": ("invalid", "/")})
    return wh, ledger


def test_batches_written_together_equal_batches_written_one_by_one(tmp_path):
    one_wh, one_by_one = seeded(tmp_path, "one")
    together_wh, together = seeded(tmp_path, "together")
    try:
        for op, replaces_rows, batches in batches_of_a_run():
            for batch in batches:
                one_by_one.record_batch("r1", "s", batch.batch_no, op, batch.sent, batch.acknowledged,
                                        batch.rejected, replaces_rows=replaces_rows)
            together.record_batches("r1", "s", op, batches, replaces_rows=replaces_rows)
        expected = ledger_rows(one_wh)
        assert ledger_rows(together_wh) == expected
        # The run really changed identifiers, kept old ones for removal and cleared a rejection.
        assert ("s", "c000010", sha("user10@example.com")) in {row[:3] for row in expected["pending_removals"]}
        assert [row[2] for row in expected["batches"] if row[0] == "r1"] == [1, 2, 3, 4, 5, 6]
        assert sorted(row[1:3] for row in expected["rejections"]) == [("c000001", "add"), ("c000001", "remove")]
    finally:
        one_wh.close()
        together_wh.close()


def test_a_repeated_key_or_a_replace_starts_a_new_group():
    adds = batches_of_a_run()[1][2]
    assert [[b.batch_no for b in group] for group in _disjoint_groups("add", adds)] == [[3, 4], [5, 6]]
    assert [[b.batch_no for b in group] for group in _disjoint_groups("replace", adds[:2])] == [[3], [4]]


def test_a_sync_with_an_empty_ledger_still_clears_what_its_own_earlier_batches_wrote(tmp_path):
    """A sync whose ledger held nothing skips deletes that cannot match, until one of its own
    batches writes a rejection or an identifier awaiting removal: a later batch must clear it."""
    wh = Warehouse.open_duckdb(tmp_path / "w.duckdb", tmp_path / "state.duckdb")
    try:
        ledger = Ledger(wh)
        ledger.ensure()
        ledger.record_batch("r1", "s", 1, "add", 2, [ack(1)], {"c000002": ("timeout", "x")}, replaces_rows=False)
        ledger.record_batch("r1", "s", 2, "add", 1, [ack(2)], {}, replaces_rows=False)
        assert wh.fetchall(f"select member_key from {table('rejections')}") == []
        ledger.record_batch("r1", "s", 3, "add", 1, [ack(1, "new1@example.com")], {})   # c000001's old email: owed
        ledger.record_batch("r1", "s", 4, "add", 1, [ack(1)], {})                       # and current again
        assert wh.fetchall(f"select member_key, email_sha256 from {table('pending_removals')}") == [
            ("c000001", sha("new1@example.com"))]
        assert [row[:3] for row in ledger.members("s")] == [ack(1)[:3], ack(2)[:3]]
    finally:
        wh.close()


def test_a_column_of_strings_reaches_the_warehouse_exactly_as_given(tmp_path):
    """Warehouse.strings_sql: joined into one parameter, or as a list when a value holds the
    separator or the null marker; either way the same values, None as NULL, in order."""
    wh = Warehouse.open_duckdb(tmp_path / "w.duckdb")
    try:
        for values in (["a"], ["", "b", ""], ["a", None, "c", None], ["a\x1fb", "c"], ["\x1e", None, "x"],
                       ("ü", "😀", None), ["a\x1e", "b"]):
            expression, param = wh.strings_sql(values)
            assert [row[0] for row in wh.fetchall(f"select {expression}", [param])] == list(values)
    finally:
        wh.close()

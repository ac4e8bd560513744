"""Test evidence for the failed_tests guard: what dbt recorded in the warehouse, not the last
run_results.json.

`dbt docs generate`, `dbt compile` or a `dbt run` without tests rewrite target/run_results.json
without any test result, which used to blind the guard. The project's on-run-end hook
(macros/test_evidence.sql) appends every node's result of each invocation that ran it to
`pusher_dbt_results` in the warehouse; the guard reads the latest result per node and asks, for
each test of the synced model and its ancestors: did it run, did it pass, and did it run after
the last build of the model it tests. Missing or older evidence stops the sync like a failure.

A project without the hook (no `record_test_evidence` macro in the manifest) keeps the old
reading of run_results.json; a project with it whose warehouse lacks the table stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from pusher.warehouse import Warehouse, qualified

TABLE = "pusher_dbt_results"
HOOK_MACRO = "record_test_evidence"
BAD_TEST_STATUSES = {"fail", "error"}
BAD_NODE_STATUSES = {"error", "skipped"}
BUILT_KINDS = ("model.", "seed.", "snapshot.")


@dataclass(frozen=True)
class Result:
    status: str
    completed_at: datetime


def hook_declared(manifest: Mapping[str, Any]) -> bool:
    return any(name.endswith("." + HOOK_MACRO) for name in manifest.get("macros") or {})


def read(wh: Warehouse) -> dict[str, Result] | None:
    """The latest result per node, or None when the warehouse has no evidence table."""
    row = wh.fetchone("select table_schema from information_schema.tables where table_catalog = ? "
                      "and table_name = ? order by table_schema limit 1", (wh.database, TABLE))
    if row is None:
        return None
    relation = qualified(wh.database, row[0], TABLE)
    rows = wh.fetchall(f"select unique_id, lower(status), completed_at from (select *, row_number() over "
                       f"(partition by unique_id order by completed_at desc) as latest from {relation}) "
                       "where latest = 1")
    return {unique_id: Result(status or "", completed_at) for unique_id, status, completed_at in rows}


def _short(unique_id: str) -> str:
    parts = unique_id.split(".")
    return parts[-2] if len(parts) >= 4 else unique_id


def problems(lineage: set[str], nodes: Mapping[str, Any], evidence: Mapping[str, Result]) -> list[str]:
    """What stops the sync: a failed or skipped build, and every test of the lineage that
    failed, never ran, or ran before the last build of a node it tests."""
    found = []
    for node_id in sorted(lineage):
        result = evidence.get(node_id)
        if node_id.startswith(BUILT_KINDS) and result and result.status in BAD_NODE_STATUSES:
            found.append(f"{node_id} {result.status}")
    for test_id, test in sorted(nodes.items()):
        if test.get("resource_type") != "test":
            continue
        tested = set((test.get("depends_on") or {}).get("nodes") or [])
        if test.get("attached_node"):
            tested.add(test["attached_node"])
        tested &= lineage
        if not tested:
            continue
        result = evidence.get(test_id)
        if result is None:
            found.append(f"test {_short(test_id)} has no recorded result")
        elif result.status in BAD_TEST_STATUSES:
            found.append(f"test {_short(test_id)} {result.status}")
        else:
            builds = [evidence[node].completed_at for node in tested if node in evidence]
            if builds and result.completed_at < max(builds):
                found.append(f"test {_short(test_id)} last ran before {_short_node(tested, evidence)} was rebuilt")
    return found


def _short_node(tested: set[str], evidence: Mapping[str, Result]) -> str:
    latest = max((node for node in tested if node in evidence), key=lambda node: evidence[node].completed_at)
    return latest.split(".")[-1]

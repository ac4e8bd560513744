"""Safety guards: each returns a message when it would stop a sync (None otherwise).

All guards read only local files, the plan and the test results dbt recorded in the
warehouse (pusher.test_evidence), so `pusher plan` shows them too.
Override one guard with `pusher sync --override <guard>` (the message names it), every guard
with `--force`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from pusher import test_evidence
from pusher.config import SyncDefinition
from pusher.errors import ConfigError
from pusher.plan import SyncPlan

GUARDS = ("remove_share", "failed_tests", "stale_sources")

BAD_TEST_STATUSES = {"fail", "error"}
BAD_NODE_STATUSES = {"error", "skipped"}
BAD_FRESHNESS = {"error", "runtime error"}


def remove_share(sync: SyncDefinition, plan: SyncPlan) -> str | None:
    if plan.kind != "audience" or not plan.ledger_size:
        return None
    if plan.remove_share > sync.max_remove_share:
        return (f"sync {sync.name} would remove {plan.departures} of {plan.ledger_size} members "
                f"({plan.remove_share:.0%} > max_remove_share {sync.max_remove_share:.0%}); an empty or broken "
                "model looks exactly like this. Check the model, then rerun with --override remove_share")
    return None


def ancestors(node_id: str, parent_map: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [node_id]
    while todo:
        for parent in parent_map.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def failed_tests(sync: SyncDefinition, manifest: Mapping[str, Any], run_results: Mapping[str, Any] | None,
                 evidence: Mapping[str, test_evidence.Result] | None = None) -> str | None:
    """The model or an ancestor failed a test, or failed/skipped to build. With the project's
    test-evidence hook (pusher.test_evidence), from the results dbt recorded in the warehouse:
    a test that never ran, or last ran before its model was rebuilt, stops the sync too.
    Without the hook, from the last dbt run (target/run_results.json)."""
    lineage = ancestors(sync.model_id, manifest.get("parent_map") or {}) | {sync.model_id}
    nodes = manifest.get("nodes") or {}
    if test_evidence.hook_declared(manifest):
        if evidence is None:
            return (f"sync {sync.name}: no dbt test results are recorded in the warehouse "
                    f"({test_evidence.TABLE}, written by the project's on-run-end hook), so nothing shows that "
                    f"{sync.model}'s tests passed. Run `dbt build`, or rerun with --override failed_tests")
        found = test_evidence.problems(lineage, nodes, evidence)
        if not found:
            return None
        shown = "; ".join(found[:5]) + (f" (+{len(found) - 5} more)" if len(found) > 5 else "")
        return (f"sync {sync.name}: model {sync.model} or an upstream node has no passing test evidence newer than "
                f"its build (dbt results recorded in {test_evidence.TABLE}): {shown}. Fix and rerun `dbt build` "
                "(or `dbt test`), or rerun with --override failed_tests")
    if not run_results:
        return None
    problems = []
    for result in run_results.get("results") or []:
        unique_id = result.get("unique_id", "")
        status = str(result.get("status", "")).lower()
        if unique_id.startswith("test."):
            if status not in BAD_TEST_STATUSES:
                continue
            test = nodes.get(unique_id) or {}
            tested = set((test.get("depends_on") or {}).get("nodes") or [])
            if test.get("attached_node"):
                tested.add(test["attached_node"])
            if tested & lineage:
                problems.append(f"test {unique_id.split('.')[-2] if unique_id.count('.') >= 3 else unique_id} {status}")
        elif unique_id in lineage and status in BAD_NODE_STATUSES:
            problems.append(f"{unique_id} {status}")
    if not problems:
        return None
    shown = "; ".join(sorted(problems)[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
    return (f"sync {sync.name}: model {sync.model} or an upstream node failed in the last dbt build "
            f"(target/run_results.json): {shown}. Fix and rerun `dbt build`, or rerun with --override failed_tests")


def stale_sources(sync: SyncDefinition, manifest: Mapping[str, Any], sources: Mapping[str, Any] | None) -> str | None:
    """A source the model reads is past its freshness error threshold (`dbt source freshness`)."""
    if not sources:
        return None
    lineage = ancestors(sync.model_id, manifest.get("parent_map") or {})
    stale = sorted(result.get("unique_id", "") for result in sources.get("results") or []
                   if result.get("unique_id") in lineage and str(result.get("status", "")).lower() in BAD_FRESHNESS)
    if not stale:
        return None
    return (f"sync {sync.name}: source(s) {', '.join(stale)} feeding {sync.model} are past their freshness "
            "error threshold (target/sources.json); reload them and rerun, or rerun with --override stale_sources")


def overridden(force: bool, names: Iterable[str] = ()) -> frozenset[str]:
    """The guards a run may go past: every one with --force, else those named by --override."""
    unknown = sorted(set(names) - set(GUARDS))
    if unknown:
        raise ConfigError(f"--override {', '.join(unknown)}: no such guard; the guards are {', '.join(GUARDS)}")
    return frozenset(GUARDS) if force else frozenset(names)


def check(sync: SyncDefinition, plan: SyncPlan | None, manifest: Mapping[str, Any],
          target_path: Path, evidence: Mapping[str, test_evidence.Result] | None = None) -> list[tuple[str, str]]:
    """(guard, message) for every guard that would stop this sync, in the order a person should read them."""
    reasons = [("failed_tests", failed_tests(sync, manifest, _load(target_path / "run_results.json"), evidence)),
               ("stale_sources", stale_sources(sync, manifest, _load(target_path / "sources.json")))]
    if plan is not None:
        reasons.append(("remove_share", remove_share(sync, plan)))
    return [(guard, message) for guard, message in reasons if message]

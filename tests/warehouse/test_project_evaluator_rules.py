"""dbt-project-evaluator (v1.3.2) rules, checked on the demo build's manifest.

The package itself needs dbt's package hub, so its rules are restated here from its models
(models/marts/{dag,documentation,governance,performance,structure,tests}/fct_*.sql), with the
project's declared conventions read from where the package reads them: the vars under
`dbt_project_evaluator` in dbt_project.yml and the exceptions seed
seeds/dbt_project_evaluator_exceptions.csv (README, "Conventions"). Every rule must find nothing.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

DEFAULT_VARS = {
    "primary_key_test_macros": [["dbt.test_unique", "dbt.test_not_null"],
                                ["dbt_utils.test_unique_combination_of_columns"]],
    "models_fanout_threshold": 3,
    "too_many_joins_threshold": 7,
    "model_types": ["base", "staging", "intermediate", "marts", "other"],
    "base_folder_name": "base", "staging_folder_name": "staging",
    "intermediate_folder_name": "intermediate", "marts_folder_name": "marts",
    "base_prefixes": ["base_"], "staging_prefixes": ["stg_"], "intermediate_prefixes": ["int_"],
    "marts_prefixes": ["fct_", "dim_"], "other_prefixes": ["rpt_"],
    "chained_views_threshold": 5,
}


@pytest.fixture(scope="module")
def project(demo_warehouse):
    manifest = json.loads((demo_warehouse.workdir / "target" / "manifest.json").read_text())
    declared = yaml.safe_load((REPO / "dbt_project.yml").read_text())["vars"].get("dbt_project_evaluator", {})
    with (REPO / "seeds" / "dbt_project_evaluator_exceptions.csv").open() as handle:
        exceptions = list(csv.DictReader(handle))
    return Project(manifest, {**DEFAULT_VARS, **declared}, exceptions)


class Project:
    def __init__(self, manifest: dict, variables: dict, exceptions: list[dict]):
        self.vars = variables
        self.exceptions = exceptions
        ours = lambda node: node.get("package_name") == "retention"  # noqa: E731
        self.models = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model" and ours(v)}
        self.tests = [v for v in manifest["nodes"].values() if v["resource_type"] == "test" and ours(v)]
        self.sources = {k: v for k, v in manifest["sources"].items() if ours(v)}
        self.exposures = {k: v for k, v in manifest["exposures"].items() if ours(v)}
        self.resources = {**manifest["nodes"], **manifest["sources"], **manifest["exposures"]}
        self.parents: dict[str, set[str]] = defaultdict(set)
        self.children: dict[str, set[str]] = defaultdict(set)
        for unique_id, node in {**self.models, **self.exposures}.items():
            for parent in node["depends_on"]["nodes"]:
                self.parents[unique_id].add(parent)
                self.children[parent].add(unique_id)

    def kind(self, unique_id: str) -> str:
        return unique_id.split(".")[0]

    def name(self, unique_id: str) -> str:
        node = self.resources[unique_id]
        return f"{node['source_name']}.{node['name']}" if self.kind(unique_id) == "source" else node["name"]

    def folder_type(self, model: dict) -> str | None:
        parts = PurePosixPath(model["original_file_path"]).parts[:-1]
        found = None
        for model_type in ("base", "staging", "intermediate", "marts"):
            if self.vars[f"{model_type}_folder_name"] in parts:
                found = model_type
        return found

    def prefix_type(self, model: dict) -> str | None:
        prefix = model["name"].split("_")[0] + "_"
        for model_type in self.vars["model_types"]:
            if prefix in self.vars.get(f"{model_type}_prefixes", []):
                return model_type
        return None

    def model_type(self, model: dict) -> str:
        return self.prefix_type(model) or self.folder_type(model) or "other"

    def filtered(self, fct_name: str, column: str, findings: list[dict]) -> list[dict]:
        """filter_exceptions(): rows whose column is like an excepted id are left out."""
        patterns = [re.compile(re.escape(row["id_to_exclude"]).replace("%", ".*") + "$")
                    for row in self.exceptions if row["fct_name"] == fct_name and row["column_name"] == column]
        return [row for row in findings if not any(p.match(str(row[column])) for p in patterns)]


def test_the_exceptions_each_say_why(project):
    assert project.exceptions, "no exceptions seed"
    for row in project.exceptions:
        assert row["fct_name"].startswith("fct_") and row["column_name"] and row["id_to_exclude"], row
        assert len(row["comment"]) > 20, row


def test_model_naming_conventions(project):
    findings = []
    for model in project.models.values():
        prefix = model["name"].split("_")[0] + "_"
        if prefix not in project.vars.get(f"{project.model_type(model)}_prefixes", []):
            findings.append({"resource_name": model["name"], "prefix": prefix})
    left = project.filtered("fct_model_naming_conventions", "resource_name", findings)
    assert left == [], left


def test_model_directories(project):
    findings = []
    for unique_id, model in project.models.items():
        folder_type = project.folder_type(model)
        if folder_type is not None and project.model_type(model) != folder_type:
            findings.append({"resource_name": model["name"]})
        if project.model_type(model) == "staging":
            directory = str(PurePosixPath(model["original_file_path"]).parent)
            for parent in project.parents[unique_id]:
                if project.kind(parent) == "source" and project.resources[parent]["source_name"] not in directory:
                    findings.append({"resource_name": model["name"]})
    left = project.filtered("fct_model_directories", "resource_name", findings)
    assert left == [], left


def test_missing_primary_key_tests(project):
    test_sets = [set(test_set) for test_set in project.vars["primary_key_test_macros"]]
    findings = []
    for unique_id, model in project.models.items():
        macros_by_column: dict[str | None, set[str]] = defaultdict(set)
        for test in project.tests:
            if test.get("attached_node") == unique_id:
                for macro in test["depends_on"]["macros"]:
                    macros_by_column[test.get("column_name")].add(macro.removeprefix("macro."))
        all_macros = set().union(*macros_by_column.values()) if macros_by_column else set()
        tested = any(
            (len(test_set) == 1 and test_set <= all_macros)
            or any(test_set <= macros for column, macros in macros_by_column.items() if column)
            for test_set in test_sets)
        if not tested:
            findings.append({"resource_name": model["name"]})
    left = project.filtered("fct_missing_primary_key_tests", "resource_name", findings)
    assert left == [], left


def test_documentation_and_test_coverage(project):
    assert [m["name"] for m in project.models.values() if not m["description"]] == []
    tested = {test.get("attached_node") for test in project.tests}
    assert [m["name"] for uid, m in project.models.items() if uid not in tested] == []
    assert [s["name"] for s in project.sources.values() if not s["description"]] == []
    assert [s["source_name"] for s in project.sources.values() if not s["source_description"]] == []
    unchecked = [{"resource_name": project.name(uid)} for uid, s in project.sources.items()
                 if not ((s.get("freshness") or {}).get("error_after") or {}).get("count")
                 and not ((s.get("freshness") or {}).get("warn_after") or {}).get("count")]
    left = project.filtered("fct_sources_without_freshness", "resource_name", unchecked)
    assert left == [], left


def test_dag_rules(project):
    findings: dict[str, list[dict]] = defaultdict(list)
    for unique_id, model in project.models.items():
        parents = project.parents[unique_id]
        kinds = {project.kind(p) for p in parents}
        sources = [p for p in parents if project.kind(p) == "source"]
        if not parents:
            findings["fct_root_models"].append({"child": model["name"]})
        if len(parents) >= project.vars["too_many_joins_threshold"]:
            findings["fct_too_many_joins"].append({"resource_name": model["name"]})
        if len(sources) > 1:
            findings["fct_multiple_sources_joined"].append({"child": model["name"]})
        if {"model", "source"} <= kinds:
            findings["fct_direct_join_to_source"].append({"child": model["name"]})
        child_type = project.model_type(model)
        if sources and child_type in ("marts", "intermediate"):
            findings["fct_marts_or_intermediate_dependent_on_source"].append({"child": model["name"]})
        for parent in parents:
            if project.kind(parent) == "model" and child_type == "staging":
                parent_type = project.model_type(project.models[parent])
                if parent_type == "staging":
                    findings["fct_staging_dependent_on_staging"].append({"child": model["name"]})
                if parent_type in ("marts", "intermediate"):
                    findings["fct_staging_dependent_on_marts_or_intermediate"].append({"child": model["name"]})
        leaves = [c for c in project.children[unique_id] if project.kind(c) == "model" and not project.children[c]]
        if len(leaves) >= project.vars["models_fanout_threshold"]:
            findings["fct_model_fanout"].append({"parent": model["name"]})
    for unique_id in project.sources:
        model_children = [c for c in project.children[unique_id] if project.kind(c) == "model"]
        if len(model_children) > 1:
            findings["fct_source_fanout"].append({"parent": project.name(unique_id)})
        if not project.children[unique_id]:
            findings["fct_unused_sources"].append({"parent": project.name(unique_id)})
    located = defaultdict(list)
    for unique_id, source in project.sources.items():
        located[(source["database"], source["schema"], source["identifier"])].append(project.name(unique_id))
    findings["fct_duplicate_sources"] = [{"source_name": names} for names in located.values() if len(names) > 1]
    # A -> B -> C and A -> C, where B is used only by C (exposures left out)
    model_children = {uid: {c for c in project.children[uid] if project.kind(c) != "exposure"}
                      for uid in {**project.models, **project.sources}}
    for parent, children in model_children.items():
        for middle in children:
            for child in model_children.get(middle, set()):
                if child in children and model_children.get(middle) == {child}:
                    findings["fct_rejoining_of_upstream_concepts"].append({"parent": project.name(parent)})
    columns = {"fct_too_many_joins": "resource_name", "fct_model_fanout": "parent",
               "fct_source_fanout": "parent", "fct_unused_sources": "parent",
               "fct_duplicate_sources": "source_name", "fct_rejoining_of_upstream_concepts": "parent"}
    left = {name: project.filtered(name, columns.get(name, "child"), rows) for name, rows in findings.items()}
    left = {name: rows for name, rows in left.items() if rows}
    assert left == {}, left


def test_governance_and_performance(project):
    findings = defaultdict(list)
    for model in project.models.values():
        if model["access"] != "public":
            continue
        if not model["config"]["contract"]["enforced"]:
            findings["fct_public_models_without_contract"].append(model["name"])
        columns = model["columns"].values()
        if not model["description"] or not columns or any(not c["description"] for c in columns):
            findings["fct_undocumented_public_models"].append(model["name"])
    for exposure in project.exposures.values():
        for parent in exposure["depends_on"]["nodes"]:
            node = project.resources[parent]
            if project.kind(parent) != "model" or node["access"] != "public":
                findings["fct_exposures_dependent_on_private_models"].append(exposure["name"])
            if project.kind(parent) == "source" or node["config"]["materialized"] in ("view", "ephemeral"):
                findings["fct_exposure_parents_materializations"].append(exposure["name"])
    assert dict(findings) == {}, dict(findings)


def test_test_directories(project):
    findings = []
    for test in project.tests:
        model = project.models.get(test.get("attached_node") or "")
        if model and test["original_file_path"].endswith(".yml"):
            if PurePosixPath(test["original_file_path"]).parent != PurePosixPath(model["original_file_path"]).parent:
                findings.append({"test_id": test["name"]})
    left = project.filtered("fct_test_directories", "test_id", findings)
    assert left == [], left


def test_every_relation_name_fits_postgres(demo_warehouse):
    """PostgreSQL cuts identifiers at 63 bytes, and dbt-postgres refuses a longer relation name:
    models, seeds and unit tests (a unit test runs as a relation named after itself) must fit,
    or `dbt build` fails on PostgreSQL only."""
    manifest = json.loads((demo_warehouse.workdir / "target" / "manifest.json").read_text())
    named = [*manifest["nodes"].values(), *manifest.get("unit_tests", {}).values()]
    too_long = sorted(node["unique_id"] for node in named
                      if node["resource_type"] in ("model", "seed", "snapshot", "unit_test")
                      and node["package_name"] == "retention"
                      and len((node.get("alias") or node["name"]).encode()) > 63)
    assert too_long == [], f"names longer than PostgreSQL's 63 bytes (rename them): {too_long}"

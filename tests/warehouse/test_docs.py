"""The dbt docs site (`make docs`): lineage with the sync exposures and the attribute-owner table,
which is generated from meta.owner and must be up to date."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "attribute_owners.py"


def test_the_attribute_owner_table_is_up_to_date():
    check = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_the_table_follows_meta_owner(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import attribute_owners
    finally:
        sys.path.pop(0)
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    state = models / "intermediate" / "state" / "_state__models.yml"
    state.write_text(state.read_text().replace("meta: {owner: loyalty}", "meta: {owner: store}", 1))
    table = attribute_owners.render(models)
    assert "| `vip_tier` | store | `int_loyalty__state` | `vip_tier_updated_at` | yes |" in table
    assert table != (REPO / "models" / "_overview__docs.md").read_text()


def test_docs_site_has_the_exposures_and_the_owner_table(demo_warehouse, dbt_runner):
    docs = dbt_runner(demo_warehouse.workdir, "docs", "generate", "--static", database=demo_warehouse.database,
                      target="docs-target")
    assert docs.completed.returncode == 0, docs.output()
    target = demo_warehouse.workdir / "docs-target"
    manifest = json.loads((target / "manifest.json").read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert exposures["msads_list_cart_abandon_0_1d"]["depends_on"]["nodes"] == ["model.retention.aud_cart_abandon_0_1d"]
    assert "Which system owns each attribute" in manifest["docs"]["doc.retention.__overview__"]["block_contents"]
    catalog = json.loads((target / "catalog.json").read_text())
    assert "last_synced_at" in catalog["nodes"]["model.retention.cio_people"]["columns"]
    page = (target / "static_index.html").read_text()
    assert "cio_segment_cart_abandon_0_1d" in page and "Which system owns each attribute" in page

"""DuckDB's fold_unicode skips translate() for printable ASCII (a speed-up, macros/inputs.sql):
on every kind of value the cleaning meets it must give exactly what the full translate gives."""

from __future__ import annotations

from tests.conftest import run_dbt

# Built with chr() so the command line carries plain ASCII: the ASCII boundaries (space, '~',
# DEL, controls), Unicode whitespace, invisible characters and fullwidth forms, alone and mixed.
VALUES = [
    "'plain@example.com'", "'  Mixed.Case@Example.COM  '", "''", "' '", "'~!#$%&*+/=?^_{|}'",
    "'a' || chr(9) || 'b@example.com'", "chr(13) || 'x@example.com' || chr(10)", "'x' || chr(127) || 'y'",
    "'x' || chr(31) || 'y'", "'a' || chr(160) || 'b'", "'a' || chr(12288) || 'b'", "'a' || chr(8203) || 'b'",
    "'jane' || chr(65312) || 'example.com'", "chr(65297) || chr(65298) || '3'", "'caf' || chr(233)",
    "chr(65279) || 'bom@example.com'", "'+1 (555) 010-0199'", "cast(null as varchar)",
]
QUERY = (
    "select count(*) as checked, count(*) filter (where fast is distinct from full_translate) as differing "
    "from (select {{ retention.duckdb__fold_unicode('v') }} as fast, "
    "{{ retention.default__fold_unicode('v') }} as full_translate from (values "
    + ", ".join(f"({value})" for value in VALUES) + ") as inputs (v)) as folded"
)


def test_the_ascii_shortcut_folds_every_value_as_translate_does(tmp_path):
    result = run_dbt(tmp_path, "show", "--inline", QUERY, "--output", "json", database=tmp_path / "fold.duckdb")
    output = result.completed.stdout + result.completed.stderr
    assert result.completed.returncode == 0, output[-3000:]
    assert f'"checked": {len(VALUES)}' in output, output[-3000:]
    assert '"differing": 0' in output, output[-3000:]

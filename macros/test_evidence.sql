{#
  on-run-end: keep every node's result of each dbt invocation that ran it (build, run, test,
  seed), so the pusher's failed_tests guard can tell whether a model's tests ran after the
  model was last built, and how they ended. target/run_results.json cannot tell: `dbt docs
  generate` or `dbt compile` rewrite it without any test result. Append-only (no DELETE, so
  engines without it work too); the pusher reads the latest row per node.
  https://docs.getdbt.com/reference/project-configs/on-run-start-on-run-end (the `results` variable)
  The table is created with a statement and the hook returns one INSERT: Spark runs one
  statement per call.
#}
{% macro pusher_test_evidence_relation() %}
  {#- Spark targets have no database: leave it out rather than pass an undefined value. -#}
  {% set database = target.database if target.database is defined else none %}
  {{ return(api.Relation.create(database=database, schema=target.schema, identifier='pusher_dbt_results')) }}
{% endmacro %}

{% macro test_evidence_table_options() %}
  {{ return(adapter.dispatch('test_evidence_table_options')()) }}
{% endmacro %}

{% macro default__test_evidence_table_options() %}{{ return('') }}{% endmacro %}

{% macro spark__test_evidence_table_options() %}{{ return('using parquet') }}{% endmacro %}

{% macro record_test_evidence(results) %}
  {% if not execute or not results %}{{ return('') }}{% endif %}
  {% set relation = pusher_test_evidence_relation() %}
  {% set rows = [] %}
  {% for result in results %}
    {% set finished = result.timing[-1].completed_at if result.timing and result.timing[-1].completed_at else run_started_at %}
    {% do rows.append("('" ~ result.node.unique_id | replace("'", "''") ~ "', '" ~ result.node.resource_type ~ "', '"
                      ~ result.status ~ "', '" ~ invocation_id ~ "', cast('"
                      ~ finished.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "' as timestamp))") %}
  {% endfor %}
  {#- statement(), not run_query(): over Spark Thrift (PyHive) fetching a DDL's result fails (see spark_unit_test.sql) -#}
  {% call statement('pusher_test_evidence_table', auto_begin=false) -%}
    create table if not exists {{ relation }} (unique_id varchar(1024), resource_type varchar(64),
      status varchar(64), invocation_id varchar(64), completed_at timestamp) {{ test_evidence_table_options() }}
  {%- endcall %}
  insert into {{ relation }} (unique_id, resource_type, status, invocation_id, completed_at) values
  {{ rows | join(',\n  ') }}
{% endmacro %}

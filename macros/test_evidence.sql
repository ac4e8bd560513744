{#
  on-run-end: keep every node's result of each dbt invocation that ran it (build, run, test,
  seed), so the pusher's failed_tests guard can tell whether a model's tests ran after the
  model was last built, and how they ended. target/run_results.json cannot tell: `dbt docs
  generate` or `dbt compile` rewrite it without any test result. Append-only (no DELETE, so
  engines without it work too); the pusher reads the latest row per node.
  https://docs.getdbt.com/reference/project-configs/on-run-start-on-run-end (the `results` variable)
#}
{% macro pusher_test_evidence_relation() %}
  {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='pusher_dbt_results')) }}
{% endmacro %}

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
  create table if not exists {{ relation }} (unique_id varchar(1024), resource_type varchar(64),
    status varchar(64), invocation_id varchar(64), completed_at timestamp)
    {%- if target.type == 'spark' %} using parquet{% endif %};
  insert into {{ relation }} (unique_id, resource_type, status, invocation_id, completed_at) values
  {{ rows | join(',\n  ') }}
{% endmacro %}

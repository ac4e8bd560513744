-- depends_on: {{ ref('rejected_inputs') }}
-- Per raw table, the export time through which rejected_inputs has evaluated every raw row
-- (macros/rejected_inputs.sql): the latest export its staging model holds, read after
-- rejected_inputs ran, which was after staging. Only a build that ran rejected_inputs moves it:
-- otherwise an incremental build keeps the marks held and a full one leaves them NULL (read all).
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key=['source_system', 'source_table'],
    on_schema_change='fail',
) }}
{%- set rejected_inputs_ran = ('model.' ~ project_name ~ '.rejected_inputs') in selected_resources %}

with

{% for source_name, table_name in rejected_inputs_raw_tables() -%}
{{ source_name }}__{{ table_name }} as (select * from {{ ref('stg_' ~ source_name ~ '__' ~ table_name) }}),

{% endfor -%}

marks as (
    {%- for source_name, table_name in rejected_inputs_raw_tables() %}
    select
        '{{ source_name }}' as source_system,
        '{{ table_name }}' as source_table,
        {%- if rejected_inputs_ran %}
        (select max(exported_at) from {{ source_name }}__{{ table_name }}) as checked_through
        {%- else %}
        cast(null as {{ dbt.type_timestamp() }}) as checked_through
        {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select * from marks
    {%- if is_incremental() and not rejected_inputs_ran %}
    where false
    {%- endif %}
)

select * from final

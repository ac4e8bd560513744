-- depends_on: {{ ref('int_identity__source_records') }}
-- Per input of int_identity__source_records, the export time through which its held matches
-- have seen every row (macros/source_records_marks.sql): the latest store customer export (as
-- int_store_customers_merged holds it, the same as its staging model), the latest store order
-- export and, per source system, the latest in int_identity__source_record_exports, read after
-- int_identity__source_records ran. Only a build that ran it with its upstream identity models
-- moves the marks: otherwise an incremental build keeps the marks held and a full one leaves
-- them NULL (match all).
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key=['source_system', 'source_table'],
    on_schema_change='fail',
) }}
{%- set matched = source_records_matched_in_this_build() %}

with

store_accounts as (select * from {{ ref('int_store_customers_merged') }}),

store_orders as (select * from {{ ref('stg_store__orders') }}),

record_exports as (select * from {{ ref('int_identity__source_record_exports') }}),

marks as (
    select
        'store' as source_system,
        'customers' as source_table,
        max(last_exported_at) as matched_through
    from store_accounts

    union all

    select
        'store' as source_system,
        'orders' as source_table,
        max(exported_at) as matched_through
    from store_orders

    union all

    select
        source_system,
        'source_record_exports' as source_table,
        max(exported_at) as matched_through
    from record_exports
    group by source_system
),

final as (
    select
        source_system,
        source_table,
        {%- if matched %}
        matched_through
        {%- else %}
        cast(null as {{ dbt.type_timestamp() }}) as matched_through
        {%- endif %}
    from marks
    {%- if is_incremental() and not matched %}
    where false
    {%- endif %}
)

select * from final

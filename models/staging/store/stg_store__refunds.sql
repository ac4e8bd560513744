-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_store__refunds') }}
-- Incremental (macros/incremental.sql): a build adds the rows exported after the ones held.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_export_tail() }}",
) }}
-- the columns of this model before amount, refunded_at and exported_at, which staged_amount_rows adds
{%- set columns %}
{{ blank_to_null('refund_id') }} as refund_id,
{{ blank_to_null('order_id') }} as order_id
{%- endset %}

with

source as (
    select * from {{ source('store', 'refunds') }}
    where {{ raw_exported_in_tail('_exported_at') }}
),

-- a negative refund or an export time after as_of is quarantined (macros/staged_amount_rows.sql)
final as (
    {{ staged_amount_rows('source', columns, amounts=['amount'], timestamps=['refunded_at'],
                          tz=source_timezone('store')) }}
)

select * from final

-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_store__orders') }}
-- Incremental (macros/incremental.sql): a build adds the rows exported after the ones held.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_export_tail() }}",
) }}
-- the columns of this model before total_price, ordered_at and exported_at, which staged_amount_rows adds
{%- set columns %}
{{ blank_to_null('order_id') }} as order_id,
{{ blank_to_null('customer_id') }} as store_customer_id,
{{ valid_email('email_cleaned') }} as email,
lower({{ blank_to_null('financial_status') }}) as financial_status,
upper({{ blank_to_null('currency') }}) as currency
{%- endset %}

with

source as (
    select * from {{ source('store', 'orders') }}
    where {{ raw_exported_in_tail('_exported_at') }}
),

-- identifiers cleaned once (macros/inputs.sql); the columns above validate them
cleaned as (
    select
        *,
        {{ clean_identifier_text('email') }} as email_cleaned
    from source
),

-- a negative total or an export time after as_of is quarantined (macros/staged_amount_rows.sql)
final as (
    {{ staged_amount_rows('cleaned', columns, amounts=['total_price'], timestamps=['ordered_at'],
                          tz=source_timezone('store')) }}
)

select * from final

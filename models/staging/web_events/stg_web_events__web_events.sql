-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_web_events__web_events') }}
-- Incremental (macros/incremental.sql): a build adds the rows exported after the ones held.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_export_tail() }}",
) }}
-- the columns of this model before cart_value, occurred_at and exported_at, which staged_amount_rows adds
{%- set columns %}
{{ blank_to_null('event_id') }} as web_event_id,
{{ blank_to_null('anonymous_id') }} as anonymous_id,
{{ blank_to_null('customer_id') }} as store_customer_id,
{{ valid_email('email_cleaned') }} as email,
lower({{ blank_to_null('event_name') }}) as event_name,
{{ blank_to_null('product_id') }} as product_id
{%- endset %}

with

source as (
    select * from {{ source('web_events', 'web_events') }}
    where {{ raw_exported_in_tail('_exported_at') }}
),

-- identifiers cleaned once (macros/inputs.sql); the columns above validate them
cleaned as (
    select
        *,
        {{ clean_identifier_text('email') }} as email_cleaned
    from source
),

-- a negative cart value or an export time after as_of is quarantined (macros/staged_amount_rows.sql)
final as (
    {{ staged_amount_rows('cleaned', columns, amounts=['cart_value'], timestamps=['occurred_at'],
                          tz=source_timezone('web_events')) }}
)

select * from final

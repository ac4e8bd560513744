-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_subscriptions__subscription_events') }}
-- Incremental (macros/incremental.sql): a build adds the rows exported after the ones held.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_export_tail() }}",
) }}
{%- set tz = source_timezone('subscriptions') %}

with

source as (
    select * from {{ source('subscriptions', 'subscription_events') }}
    where {{ raw_exported_in_tail('_exported_at') }}
),

-- identifiers cleaned once (macros/inputs.sql); renamed validates them
cleaned as (
    select
        *,
        {{ clean_identifier_text('customer_email') }} as customer_email_cleaned
    from source
),

renamed as (
    select
        {{ blank_to_null('event_id') }} as subscription_event_id,
        {{ blank_to_null('subscription_id') }} as subscription_id,
        {{ blank_to_null('store_customer_id') }} as store_customer_id,
        {{ valid_email('customer_email_cleaned') }} as email,
        lower({{ blank_to_null('status') }}) as subscription_status,
        {{ to_utc('changed_at', tz) }} as changed_at,
        {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from cleaned
),

-- quarantined (listed in rejected_inputs): an export time after as_of is a clock or zone error
final as (
    select * from renamed
    where not {{ exported_in_future('exported_at') }} and {{ exported_in_tail('exported_at') }}
)

select * from final

-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_back_in_stock__back_in_stock_requests') }}
-- Incremental (macros/incremental.sql): a build adds the rows exported after the ones held.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_export_tail() }}",
) }}
{%- set tz = source_timezone('back_in_stock') %}

with

source as (
    select * from {{ source('back_in_stock', 'back_in_stock_requests') }}
    where {{ raw_exported_in_tail('_exported_at') }}
),

-- identifiers cleaned once (macros/inputs.sql); renamed validates them
cleaned as (
    select
        *,
        {{ clean_identifier_text('email') }} as email_cleaned,
        {{ clean_identifier_text('phone') }} as phone_cleaned
    from source
),

renamed as (
    select
        {{ blank_to_null('request_id') }} as back_in_stock_request_id,
        {{ valid_email('email_cleaned') }} as email,
        {{ normalize_phone('phone_cleaned') }} as phone_e164,
        {{ blank_to_null('product_id') }} as product_id,
        {{ to_utc('requested_at', tz) }} as requested_at,
        {{ to_utc('notified_at', tz) }} as notified_at,
        {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from cleaned
),

-- quarantined (listed in rejected_inputs): an export time after as_of is a clock or zone error
final as (
    select * from renamed
    where not {{ exported_in_future('exported_at') }} and {{ exported_in_tail('exported_at') }}
)

select * from final

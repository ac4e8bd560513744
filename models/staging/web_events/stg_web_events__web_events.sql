-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_web_events__web_events') }}
{%- set tz = source_timezone('web_events') %}

with

source as (select * from {{ source('web_events', 'web_events') }}),

-- identifiers cleaned once (macros/inputs.sql); renamed validates them
cleaned as (
    select
        *,
        {{ clean_identifier_text('email') }} as email_cleaned
    from source
),

renamed as (
    select
        {{ blank_to_null('event_id') }} as web_event_id,
        {{ blank_to_null('anonymous_id') }} as anonymous_id,
        {{ blank_to_null('customer_id') }} as store_customer_id,
        {{ valid_email('email_cleaned') }} as email,
        lower({{ blank_to_null('event_name') }}) as event_name,
        {{ blank_to_null('product_id') }} as product_id,
        cast(cart_value as {{ dbt.type_numeric() }}) as cart_value,
        {{ to_utc('occurred_at', tz) }} as occurred_at,
        {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from cleaned
    -- quarantined (listed in rejected_inputs): a negative cart value
    where not {{ is_negative_amount('cart_value') }}
),

-- quarantined (listed in rejected_inputs): an export time after as_of is a clock or zone error
final as (
    select * from renamed
    where not {{ exported_in_future('exported_at') }}
)

select * from final

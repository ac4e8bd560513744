-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_web_events__web_events') }}
{%- set tz = source_timezone('web_events') %}

with

source as (select * from {{ source('web_events', 'web_events') }}),

renamed as (
    select
        {{ blank_to_null('event_id') }} as web_event_id,
        {{ blank_to_null('anonymous_id') }} as anonymous_id,
        {{ blank_to_null('customer_id') }} as store_customer_id,
        {{ normalize_email('email') }} as email,
        lower({{ blank_to_null('event_name') }}) as event_name,
        {{ blank_to_null('product_id') }} as product_id,
        cast(cart_value as {{ dbt.type_numeric() }}) as cart_value,
        {{ to_utc('occurred_at', tz) }} as occurred_at,
        cast(_exported_at as {{ dbt.type_timestamp() }}) as exported_at
    from source
)

select * from renamed

-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_returns__returns') }}
{%- set tz = source_timezone('returns') %}

with

source as (select * from {{ source('returns', 'returns') }}),

renamed as (
    select
        {{ blank_to_null('return_id') }} as return_id,
        {{ blank_to_null('order_id') }} as order_id,
        {{ normalize_email('customer_email') }} as email,
        lower({{ blank_to_null('status') }}) as return_status,
        {{ to_utc('updated_at', tz) }} as updated_at,
        cast(_exported_at as {{ dbt.type_timestamp() }}) as exported_at
    from source
)

select * from renamed

-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_store__refunds') }}
{%- set tz = source_timezone('store') %}

with

source as (select * from {{ source('store', 'refunds') }}),

renamed as (
    select
        {{ blank_to_null('refund_id') }} as refund_id,
        {{ blank_to_null('order_id') }} as order_id,
        cast(amount as {{ dbt.type_numeric() }}) as amount,
        {{ to_utc('refunded_at', tz) }} as refunded_at,
        cast(_exported_at as {{ dbt.type_timestamp() }}) as exported_at
    from source
    -- quarantined (listed in rejected_inputs): a refund is a positive amount
    where not {{ is_negative_amount('amount') }}
)

select * from renamed

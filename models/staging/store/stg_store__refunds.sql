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
        {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from source
    -- quarantined (listed in rejected_inputs): a refund is a positive amount
    where not {{ is_negative_amount('amount') }}
),

-- quarantined (listed in rejected_inputs): an export time after as_of is a clock or zone error
final as (
    select * from renamed
    where not {{ exported_in_future('exported_at') }}
)

select * from final

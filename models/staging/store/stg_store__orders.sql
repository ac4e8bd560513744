-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_store__orders') }}
{%- set tz = source_timezone('store') %}

with

source as (select * from {{ source('store', 'orders') }}),

-- identifiers cleaned once (macros/inputs.sql); renamed validates them
cleaned as (
    select
        *,
        {{ clean_identifier_text('email') }} as email_cleaned
    from source
),

renamed as (
    select
        {{ blank_to_null('order_id') }} as order_id,
        {{ blank_to_null('customer_id') }} as store_customer_id,
        {{ valid_email('email_cleaned') }} as email,
        lower({{ blank_to_null('financial_status') }}) as financial_status,
        upper({{ blank_to_null('currency') }}) as currency,
        cast(total_price as {{ dbt.type_numeric() }}) as total_price,
        {{ to_utc('ordered_at', tz) }} as ordered_at,
        {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from cleaned
    -- quarantined (listed in rejected_inputs): a negative total is not an order
    where not {{ is_negative_amount('total_price') }}
),

-- quarantined (listed in rejected_inputs): an export time after as_of is a clock or zone error
final as (
    select * from renamed
    where not {{ exported_in_future('exported_at') }}
)

select * from final

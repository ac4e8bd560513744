-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_store__order_lines') }}
-- Incremental (macros/incremental.sql): a build adds the rows exported after the ones held.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_export_tail() }}",
) }}
with

source as (
    select * from {{ source('store', 'order_lines') }}
    where {{ raw_exported_in_tail('_exported_at') }}
),

renamed as (
    select
        {{ blank_to_null('order_line_id') }} as order_line_id,
        {{ blank_to_null('order_id') }} as order_id,
        {{ blank_to_null('product_id') }} as product_id,
        lower({{ blank_to_null('product_category') }}) as product_category,
        cast(quantity as integer) as quantity,
        cast(unit_price as {{ dbt.type_numeric() }}) as unit_price,
        {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from source
    -- quarantined (listed in rejected_inputs): negative prices or quantities
    where
        not {{ is_negative_amount('unit_price') }}
        and not {{ is_negative_amount('quantity') }}
),

-- quarantined (listed in rejected_inputs): an export time after as_of is a clock or zone error
final as (
    select * from renamed
    where not {{ exported_in_future('exported_at') }} and {{ exported_in_tail('exported_at') }}
)

select * from final

-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_loyalty__loyalty_accounts') }}
-- Incremental (macros/incremental.sql): a build adds the rows exported after the ones held.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_export_tail() }}",
) }}
{%- set tz = source_timezone('loyalty') %}

with

source as (
    select * from {{ source('loyalty', 'loyalty_accounts') }}
    where {{ raw_exported_in_tail('_exported_at') }}
),

-- identifiers cleaned once (macros/inputs.sql); renamed validates them
cleaned as (
    select
        *,
        {{ clean_identifier_text('email') }} as email_cleaned
    from source
),

renamed as (
    select
        {{ blank_to_null('account_id') }} as loyalty_account_id,
        {{ valid_email('email_cleaned') }} as email,
        lower({{ blank_to_null('vip_tier') }}) as vip_tier,
        cast(points_balance as integer) as points_balance,
        {{ to_utc('updated_at', tz) }} as updated_at,
        {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from cleaned
),

-- quarantined (listed in rejected_inputs): an export time after as_of is a clock or zone error
final as (
    select * from renamed
    where not {{ exported_in_future('exported_at') }} and {{ exported_in_tail('exported_at') }}
)

select * from final

-- One row per store account: each attribute its latest known value over all the account's
-- snapshots (by updated_at, then export).
-- Incremental (macros/incremental.sql): a build recomputes the accounts with a snapshot exported
-- after the latest one held; a full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='store_customer_id',
    on_schema_change='fail',
) }}

{%- set by_customer = 'store_customer_id' %}
{%- set newest_first = 'updated_at desc, exported_at desc' %}

with

customer_snapshots as (
    select * from {{ ref('stg_store__customers') }}
    {%- if is_incremental() %}
    where store_customer_id in (
        select store_customer_id from {{ ref('stg_store__customers') }}
        where exported_at > {{ high_water_mark('last_exported_at') }} or exported_at is null
    )
    {%- endif %}
),

values_merged as (
    select
        store_customer_id,
        {{ latest_known('email', by_customer, newest_first) }} as email,
        {{ latest_known('phone_e164', by_customer, newest_first) }} as phone_e164,
        {{ latest_known('first_name', by_customer, newest_first) }} as first_name,
        {{ latest_known('last_name', by_customer, newest_first) }} as last_name,
        {{ latest_known('country_code', by_customer, newest_first) }} as country_code,
        {{ latest_known('accepts_marketing', by_customer, newest_first) }} as accepts_marketing,
        min(created_at) over (partition by store_customer_id) as created_at,
        max(updated_at) over (partition by store_customer_id) as updated_at,
        max(exported_at) over (partition by store_customer_id) as last_exported_at,
        row_number() over (partition by store_customer_id order by {{ newest_first }}) as snapshot_rank
    from customer_snapshots
),

final as (
    select
        store_customer_id,
        email,
        phone_e164,
        first_name,
        last_name,
        country_code,
        coalesce(accepts_marketing, false) as accepts_marketing,
        created_at,
        updated_at,
        last_exported_at
    from values_merged
    where snapshot_rank = 1
)

select * from final

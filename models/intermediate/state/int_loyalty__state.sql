-- One row per person with a loyalty account: VIP tier and points, each the latest known value
-- by the account's updated_at (a blank tier or NULL points never wipes a known value; a late
-- export of an older snapshot never reverts a newer one). A person with two accounts takes,
-- per attribute, the most recently updated known value across them.
-- Incremental (macros/incremental.sql): a build recomputes the people with a loyalty export
-- newer than the latest held, or whose matched accounts changed; a full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='customer_id',
    on_schema_change='fail',
    post_hook="{{ delete_people_without_records('loyalty') }}",
) }}

{%- set by_customer = 'customer_id' %}
{%- set newest_first = 'updated_at desc, exported_at desc' %}

with

loyalty_accounts as (select * from {{ ref('stg_loyalty__loyalty_accounts') }}),

{{ source_records_checksummed('loyalty') }},

accounts_matched as (
    select
        source_records.customer_id,
        loyalty_accounts.vip_tier,
        loyalty_accounts.points_balance,
        loyalty_accounts.updated_at,
        loyalty_accounts.exported_at
    from loyalty_accounts
    inner join source_records
        on loyalty_accounts.loyalty_account_id = source_records.source_record_id
),

accounts_in_scope as (
    select * from accounts_matched
    {%- if is_incremental() %}
    where customer_id in ({{ people_to_refresh('accounts_matched', 'records_checksummed', 'loyalty_last_exported_at') }})
    {%- endif %}
),

accounts_merged as (
    select distinct
        customer_id,
        {{ latest_known('vip_tier', by_customer, newest_first) }} as vip_tier,
        {{ latest_known_at('vip_tier', 'updated_at', by_customer, newest_first) }} as vip_tier_updated_at,
        {{ latest_known('points_balance', by_customer, newest_first) }} as loyalty_points,
        {{ latest_known_at('points_balance', 'updated_at', by_customer, newest_first) }} as loyalty_points_updated_at,
        max(exported_at) over (partition by customer_id) as loyalty_last_exported_at
    from accounts_in_scope
),

final as (
    select
        accounts_merged.*,
        records_checksummed.source_records_checksum
    from accounts_merged
    inner join records_checksummed
        on accounts_merged.customer_id = records_checksummed.customer_id
)

select * from final

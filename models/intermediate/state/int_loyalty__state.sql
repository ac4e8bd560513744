-- One row per person with a loyalty account: VIP tier and points, each the latest known value
-- by the account's updated_at (a blank tier or NULL points never wipes a known value; a late
-- export of an older snapshot never reverts a newer one). A person with two accounts takes,
-- per attribute, the most recently updated known value across them.

{%- set by_customer = 'customer_id' %}
{%- set newest_first = 'updated_at desc, exported_at desc' %}

with

loyalty_accounts as (select * from {{ ref('stg_loyalty__loyalty_accounts') }}),

source_records as (
    select * from {{ ref('int_identity__source_records') }}
    where source_system = 'loyalty'
),

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
    where source_records.customer_id is not null
),

final as (
    select distinct
        customer_id,
        {{ latest_known('vip_tier', by_customer, newest_first) }} as vip_tier,
        {{ latest_known_at('vip_tier', 'updated_at', by_customer, newest_first) }} as vip_tier_updated_at,
        {{ latest_known('points_balance', by_customer, newest_first) }} as loyalty_points,
        {{ latest_known_at('points_balance', 'updated_at', by_customer, newest_first) }} as loyalty_points_updated_at,
        max(exported_at) over (partition by customer_id) as loyalty_last_exported_at
    from accounts_matched
)

select * from final

-- customer_profile's rows as far as they do not move with as_of or with the sources' last
-- syncs: one row per person, every state model joined, orders summarized, tiers and the flags
-- that depend on state alone. customer_profile (a view) adds the sync times and the as_of flags.
-- Kept by difference (macros/changed_rows.sql): a build computes every row and writes only the
-- people whose row changed (about 1% of a million in a build of 1% new exports), where
-- rewriting the whole table took more than half of customer_profile's time.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='customer_id',
    on_schema_change='fail',
    post_hook="{{ delete_rows_without_key('customer_id', 'select customer_id from ' ~ ref('int_identity__people'),
                                          keys_unique=true) }}",
) }}
{%- set money = 'decimal(38, 6)' %}

with

people as (select * from {{ ref('int_identity__people') }}),

orders as (select * from {{ ref('int_orders__state') }}),

subscriptions as (select * from {{ ref('int_subscriptions__state') }}),

loyalty as (select * from {{ ref('int_loyalty__state') }}),

returns as (select * from {{ ref('int_returns__state') }}),

-- one row per person with a non-voided order
orders_summarized as (
    select
        customer_id,
        count(*) as order_count,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        sum(total_price) as gross_revenue,
        sum(refunded_amount) as refunded_amount,
        sum(net_amount) as lifetime_value,
        max(last_refunded_at) as last_refunded_at,
        sum(total_price) / count(*) as average_order_value,
        case
            when sum(total_price) > 0 then sum(refunded_amount) / sum(total_price)
            else 0
        end as refund_share
    from orders
    where not is_voided
    group by customer_id
),

-- every person, with what each system knows about them; people without orders get zeros
people_joined as (
    select
        people.customer_id,
        people.email,
        people.phone_e164,
        people.email_sha256,
        people.phone_sha256,
        people.first_name,
        people.last_name,
        people.country_code,
        people.accepts_marketing,
        people.created_at,
        subscriptions.subscription_status,
        subscriptions.subscription_status_updated_at,
        loyalty.vip_tier,
        loyalty.vip_tier_updated_at,
        loyalty.loyalty_points,
        loyalty.loyalty_points_updated_at,
        loyalty.loyalty_last_exported_at,
        returns.return_status,
        returns.return_status_updated_at,
        returns.open_return_opened_at,
        orders_summarized.first_order_at,
        orders_summarized.last_order_at,
        orders_summarized.last_refunded_at,
        coalesce(orders_summarized.order_count, 0) as order_count,
        cast(coalesce(orders_summarized.gross_revenue, 0) as {{ money }}) as gross_revenue,
        cast(coalesce(orders_summarized.refunded_amount, 0) as {{ money }}) as refunded_amount,
        cast(coalesce(orders_summarized.lifetime_value, 0) as {{ money }}) as lifetime_value,
        cast(orders_summarized.average_order_value as {{ type_double() }}) as average_order_value,
        cast(coalesce(orders_summarized.refund_share, 0) as {{ type_double() }}) as refund_share,
        coalesce(subscriptions.subscription_status = 'active', false) as has_active_subscription,
        coalesce(returns.has_open_return, false) as has_open_return
    from people
    left join orders_summarized
        on people.customer_id = orders_summarized.customer_id
    left join subscriptions
        on people.customer_id = subscriptions.customer_id
    left join loyalty
        on people.customer_id = loyalty.customer_id
    left join returns
        on people.customer_id = returns.customer_id
),

tiers_assigned as (
    select
        *,
        case
            when lifetime_value >= {{ var('ltv_high_threshold') }} then 'high'
            when lifetime_value >= {{ var('ltv_medium_threshold') }} then 'medium'
            when lifetime_value > 0 then 'low'
            else 'none'
        end as ltv_tier,
        case
            when average_order_value >= {{ var('aov_high_threshold') }} then 'high'
            when average_order_value is not null then 'standard'
            else 'none'
        end as aov_tier,
        {{ holdout_group('customer_id') }} as holdout_group
    from people_joined
),

final as (
    select
        customer_id,
        email,
        phone_e164,
        email_sha256,
        phone_sha256,
        first_name,
        last_name,
        country_code,
        subscription_status,
        vip_tier,
        ltv_tier,
        aov_tier,
        return_status,
        holdout_group,
        loyalty_points,
        order_count,
        gross_revenue,
        refunded_amount,
        lifetime_value,
        average_order_value,
        refund_share,
        accepts_marketing,
        has_active_subscription,
        has_open_return,
        not has_open_return
        and refund_share < {{ var('no_discount_refund_share') }} as is_discount_eligible,
        created_at,
        first_order_at,
        last_order_at,
        last_refunded_at,
        open_return_opened_at,
        subscription_status_updated_at,
        vip_tier_updated_at,
        loyalty_points_updated_at,
        return_status_updated_at,
        loyalty_last_exported_at
    from tiers_assigned
)

{% if incremental_build() -%}
{{ rows_not_held('final', ['customer_id']) }}
{%- else -%}
select * from final
{%- endif %}

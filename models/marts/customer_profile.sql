-- One row per person, read top to bottom: import each state model, summarize orders per person,
-- join everything known about a person into one row, then derive tiers, then flags, then the
-- eligibility rules built on those flags. Money stays exact (decimal); ratios are doubles.
{%- set money = 'decimal(38, 6)' %}

with

people as (select * from {{ ref('int_identity__people') }}),

orders as (select * from {{ ref('int_orders__state') }}),

subscriptions as (select * from {{ ref('int_subscriptions__state') }}),

loyalty as (select * from {{ ref('int_loyalty__state') }}),

returns as (select * from {{ ref('int_returns__state') }}),

source_syncs as (select * from {{ ref('int_source_syncs_summarized') }}),

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
        returns.return_status,
        returns.return_status_updated_at,
        returns.open_return_opened_at,
        orders_summarized.first_order_at,
        orders_summarized.last_order_at,
        orders_summarized.last_refunded_at,
        source_syncs.store_last_synced_at,
        source_syncs.subscriptions_last_synced_at,
        source_syncs.returns_last_synced_at,
        source_syncs.reviews_last_synced_at,
        source_syncs.back_in_stock_last_synced_at,
        source_syncs.web_events_last_synced_at,
        coalesce(orders_summarized.order_count, 0) as order_count,
        cast(coalesce(orders_summarized.gross_revenue, 0) as {{ money }}) as gross_revenue,
        cast(coalesce(orders_summarized.refunded_amount, 0) as {{ money }}) as refunded_amount,
        cast(coalesce(orders_summarized.lifetime_value, 0) as {{ money }}) as lifetime_value,
        cast(orders_summarized.average_order_value as {{ type_double() }}) as average_order_value,
        cast(coalesce(orders_summarized.refund_share, 0) as {{ type_double() }}) as refund_share,
        coalesce(subscriptions.subscription_status = 'active', false) as has_active_subscription,
        coalesce(returns.has_open_return, false) as has_open_return,
        -- loyalty exports every account on every sync: an account missing from recent
        -- exports has stopped syncing even while the source as a whole is healthy
        coalesce(
            loyalty.loyalty_last_exported_at, source_syncs.loyalty_last_synced_at
        ) as loyalty_last_synced_at
    from people
    cross join source_syncs
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

flags_derived as (
    select
        *,
        coalesce(
            last_order_at > {{ dbt.dateadd('day', -1 * var('recent_purchase_days'), as_of()) }},
            false
        ) as is_recent_purchaser,
        not has_open_return
        and refund_share < {{ var('no_discount_refund_share') }} as is_discount_eligible,
        -- fresh: every sensitive source synced within its var freshness_window_hours window
        coalesce(
            {%- for source_name, hours in var('freshness_window_hours').items() %}
            {{ source_name }}_last_synced_at > {{ dbt.dateadd('hour', -1 * hours, as_of()) }}
            {%- if not loop.last %} and{% endif %}
            {%- endfor %},
            false
        ) as is_data_fresh
    from tiers_assigned
),

eligibility_derived as (
    select
        *,
        order_count > 0
        and last_order_at <= {{ dbt.dateadd('day', -1 * var('lapsed_window_days')[0], as_of()) }}
        and not has_active_subscription
        and is_discount_eligible as is_winback_eligible,
        -- sensitive (treatment) audiences take only consenting, fresh, non-holdout people
        accepts_marketing
        and is_data_fresh
        and holdout_group = 'treatment' as is_treatment_eligible
    from flags_derived
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
        is_recent_purchaser,
        is_discount_eligible,
        is_winback_eligible,
        is_data_fresh,
        is_treatment_eligible,
        created_at,
        first_order_at,
        last_order_at,
        last_refunded_at,
        open_return_opened_at,
        subscription_status_updated_at,
        vip_tier_updated_at,
        loyalty_points_updated_at,
        return_status_updated_at,
        store_last_synced_at,
        subscriptions_last_synced_at,
        loyalty_last_synced_at,
        returns_last_synced_at,
        reviews_last_synced_at,
        back_in_stock_last_synced_at,
        web_events_last_synced_at
    from eligibility_derived
)

select * from final

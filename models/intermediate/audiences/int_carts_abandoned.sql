-- One row per identified person with a cart: their latest added_to_cart / checkout_started
-- event, its age window ('0_1d', '1_3d' or NULL when older) and value tier, and whether
-- they ordered since (then the cart is not abandoned).
{%- set cart_days = var('cart_window_days') %}

with

web_events as (select * from {{ ref('stg_web_events__web_events') }}),

source_records as (
    select * from {{ ref('int_identity__source_records') }}
    where source_system = 'web_events'
),

orders as (select * from {{ ref('int_orders__state') }}),

cart_events_matched as (
    select
        source_records.customer_id,
        web_events.web_event_id,
        web_events.cart_value,
        web_events.occurred_at,
        row_number() over (
            partition by source_records.customer_id
            order by web_events.occurred_at desc, web_events.web_event_id desc
        ) as cart_rank
    from web_events
    inner join source_records
        on web_events.web_event_id = source_records.source_record_id
    where
        web_events.event_name in ('added_to_cart', 'checkout_started')
        and source_records.customer_id is not null
        and web_events.occurred_at <= {{ as_of() }}
),

orders_latest as (
    select
        customer_id,
        max(ordered_at) as last_order_at
    from orders
    where not is_voided
    group by customer_id
),

final as (
    select
        cart_events_matched.customer_id,
        cart_events_matched.web_event_id as cart_event_id,
        case
            when {{ in_age_window('cart_events_matched.occurred_at', cart_days[0], cart_days[1]) }} then '0_1d'
            when {{ in_age_window('cart_events_matched.occurred_at', cart_days[1], cart_days[2]) }} then '1_3d'
        end as cart_window,
        case
            when coalesce(cart_events_matched.cart_value, 0) >= {{ var('cart_high_value_threshold') }} then 'high'
            else 'standard'
        end as cart_value_tier,
        cart_events_matched.cart_value,
        coalesce(orders_latest.last_order_at >= cart_events_matched.occurred_at, false) as has_ordered_since,
        cart_events_matched.occurred_at as carted_at
    from cart_events_matched
    left join orders_latest
        on cart_events_matched.customer_id = orders_latest.customer_id
    where cart_events_matched.cart_rank = 1
)

select * from final

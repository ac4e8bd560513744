-- One row per identified person with a cart: their latest added_to_cart / checkout_started
-- event, its age window ('0_1d', '1_3d' or NULL when older) and value tier, and whether
-- they ordered since (then the cart is not abandoned).
{%- set cart_days = var('cart_window_days') %}
-- Merged whole (macros/changed_rows.sql): windows move with as_of, so every row is computed, but
-- a build writes only the people whose cart row changed.
{{ config(
    materialized=difference_materialization(),
    incremental_strategy='difference',
    on_schema_change='fail',
    unique_key='customer_id',
) }}

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

carts_latest as (
    select
        customer_id,
        web_event_id,
        cart_value,
        occurred_at
    from cart_events_matched
    where cart_rank = 1
),

-- only the people with a cart: aggregating every person's orders cost more than the rest
orders_latest as (
    select
        orders.customer_id,
        max(orders.ordered_at) as last_order_at
    from orders
    inner join carts_latest
        on orders.customer_id = carts_latest.customer_id
    where not orders.is_voided
    group by orders.customer_id
),

final as (
    select
        carts_latest.customer_id,
        carts_latest.web_event_id as cart_event_id,
        case
            when {{ in_age_window('carts_latest.occurred_at', cart_days[0], cart_days[1]) }} then '0_1d'
            when {{ in_age_window('carts_latest.occurred_at', cart_days[1], cart_days[2]) }} then '1_3d'
        end as cart_window,
        case
            when coalesce(carts_latest.cart_value, 0) >= {{ var('cart_high_value_threshold') }} then 'high'
            else 'standard'
        end as cart_value_tier,
        carts_latest.cart_value,
        coalesce(orders_latest.last_order_at >= carts_latest.occurred_at, false) as has_ordered_since,
        carts_latest.occurred_at as carted_at
    from carts_latest
    left join orders_latest
        on carts_latest.customer_id = orders_latest.customer_id
)

select * from final

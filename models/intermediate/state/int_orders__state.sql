-- One row per order: its latest known status (orders carry no update time, so the latest
-- export wins), net of refunds, attached to the person.
-- Incremental (macros/incremental.sql): a build recomputes the orders with an order export newer
-- than the latest order export held or a refund export newer than the latest refund export held
-- (a mark per input: one export may run behind the other), and the orders not held yet (new, or
-- whose store account had not arrived); a store account never changes person, so no other order
-- moves. A full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='order_id',
    on_schema_change='fail',
) }}
{{ require_held_columns(['orders_last_exported_at', 'refunds_last_exported_at']) }}

{#- Two snapshots exported at the same instant: the later status in an order's life wins, then
    the values themselves, so every build (full or incremental) picks the same one. -#}
{%- set status_progress = "case financial_status when 'voided' then 4 when 'refunded' then 3"
                          ~ " when 'partially_refunded' then 2 when 'paid' then 1 else 0 end" %}
{%- set newest_first = 'exported_at desc, ' ~ status_progress ~ ' desc, total_price desc, currency desc' %}

with

order_snapshots as (select * from {{ ref('stg_store__orders') }}),

refunds as (select * from {{ ref('stg_store__refunds') }}),

customer_map as (select * from {{ ref('int_identity__store_customers') }}),

{% if is_incremental() -%}
orders_to_refresh as (
    select order_snapshots.order_id
    from order_snapshots
    where order_snapshots.exported_at > {{ high_water_mark('orders_last_exported_at') }}

    union

    select refunds.order_id
    from refunds
    -- no refund held yet: every refund is new
    where coalesce(refunds.exported_at > {{ high_water_mark('refunds_last_exported_at') }}, true)

    union

    select order_snapshots.order_id
    from order_snapshots
    left join {{ this }} as held
        on order_snapshots.order_id = held.order_id
    where held.order_id is null
),

{% endif -%}

snapshots_in_scope as (
    select * from order_snapshots
    {%- if is_incremental() %}
    where order_id in (select orders_to_refresh.order_id from orders_to_refresh)
    {%- endif %}
),

refunds_in_scope as (
    select * from refunds
    {%- if is_incremental() %}
    where order_id in (select orders_to_refresh.order_id from orders_to_refresh)
    {%- endif %}
),

orders_merged as (
    select
        order_id,
        store_customer_id,
        {{ latest_known('financial_status', 'order_id', newest_first) }} as financial_status,
        {{ latest_known('total_price', 'order_id', newest_first) }} as total_price,
        {{ latest_known('currency', 'order_id', newest_first) }} as currency,
        min(ordered_at) over (partition by order_id) as ordered_at,
        max(exported_at) over (partition by order_id) as last_exported_at,
        row_number() over (partition by order_id order by {{ newest_first }}) as snapshot_rank
    from snapshots_in_scope
),

refunds_summed as (
    select
        order_id,
        sum(amount) as refunded_amount,
        max(refunded_at) as last_refunded_at,
        max(last_exported_at) as last_exported_at
    from (
        select
            refund_id,
            order_id,
            amount,
            refunded_at,
            max(exported_at) as last_exported_at
        from refunds_in_scope
        group by refund_id, order_id, amount, refunded_at
    ) as distinct_refunds
    group by order_id
),

final as (
    select
        orders_merged.order_id,
        customer_map.customer_id,
        orders_merged.store_customer_id,
        orders_merged.financial_status,
        orders_merged.currency,
        orders_merged.total_price,
        coalesce(refunds_summed.refunded_amount, 0) as refunded_amount,
        orders_merged.total_price - coalesce(refunds_summed.refunded_amount, 0) as net_amount,
        orders_merged.financial_status = 'voided' as is_voided,
        orders_merged.ordered_at,
        refunds_summed.last_refunded_at,
        greatest(
            orders_merged.last_exported_at, coalesce(refunds_summed.last_exported_at, orders_merged.last_exported_at)
        ) as last_exported_at,
        orders_merged.last_exported_at as orders_last_exported_at,
        refunds_summed.last_exported_at as refunds_last_exported_at
    from orders_merged
    inner join customer_map
        on orders_merged.store_customer_id = customer_map.store_customer_id
    left join refunds_summed
        on orders_merged.order_id = refunds_summed.order_id
    where orders_merged.snapshot_rank = 1
)

select * from final

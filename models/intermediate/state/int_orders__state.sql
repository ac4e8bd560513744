-- One row per order: its latest known status (orders carry no update time, so the latest
-- export wins), net of refunds, attached to the person.

with

order_snapshots as (select * from {{ ref('stg_store__orders') }}),

refunds as (select * from {{ ref('stg_store__refunds') }}),

customer_map as (select * from {{ ref('int_identity__store_customers') }}),

orders_merged as (
    select
        order_id,
        store_customer_id,
        {{ latest_known('financial_status', 'order_id', 'exported_at desc') }} as financial_status,
        {{ latest_known('total_price', 'order_id', 'exported_at desc') }} as total_price,
        {{ latest_known('currency', 'order_id', 'exported_at desc') }} as currency,
        min(ordered_at) over (partition by order_id) as ordered_at,
        row_number() over (partition by order_id order by exported_at desc) as snapshot_rank
    from order_snapshots
),

refunds_summed as (
    select
        order_id,
        sum(amount) as refunded_amount,
        max(refunded_at) as last_refunded_at
    from (
        select distinct
            refund_id,
            order_id,
            amount,
            refunded_at
        from refunds
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
        refunds_summed.last_refunded_at
    from orders_merged
    inner join customer_map
        on orders_merged.store_customer_id = customer_map.store_customer_id
    left join refunds_summed
        on orders_merged.order_id = refunds_summed.order_id
    where orders_merged.snapshot_rank = 1
)

select * from final

-- depends_on: {{ ref('int_identity__people') }}
-- Customer.io objects of the order type (exposure cio_objects_orders, object_type_id 1): one row
-- per order of a person Customer.io knows (in cio_people, so the relationship has someone to
-- point at). object_id is the order id, customer_id the person the order relates to; every
-- other column is an object attribute (timestamps are sent as Unix seconds).
-- Incremental (macros/cio_objects_orders_marks.sql): a build recomputes only the orders exported
-- or of a person exported since int_cio_objects_orders__seen_through (about 2% of them after
-- 1% new exports, all written: cheaper than reading the held rows to compare), and deletes the
-- orders it no longer yields.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='object_id',
    on_schema_change='fail',
    post_hook="{{ delete_cio_objects_orders_gone() }}",
) }}

with

orders as (
    {%- if incremental_build() %}
    {{ cio_objects_orders_refreshed() }}
    {%- else %}
    select * from {{ ref('int_orders__state') }}
    {%- endif %}
),

people as (select * from {{ ref('cio_people') }}),

final as (
    select
        orders.order_id as object_id,
        orders.customer_id,
        orders.financial_status as status,
        orders.currency,
        cast(orders.total_price as {{ type_double() }}) as total,
        cast(orders.refunded_amount as {{ type_double() }}) as refunded_amount,
        orders.is_voided,
        orders.ordered_at
    from orders
    inner join people
        on orders.customer_id = people.customer_id
)

select * from final

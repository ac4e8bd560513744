-- Customer.io objects of the order type (exposure cio_objects_orders, object_type_id 1): one row
-- per order of a person Customer.io knows (in cio_people, so the relationship has someone to
-- point at). object_id is the order id, customer_id the person the order relates to; every
-- other column is an object attribute (timestamps are sent as Unix seconds).
-- Kept by difference (macros/changed_rows.sql): a build writes only the orders whose row changed.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='object_id',
    on_schema_change='fail',
    post_hook="{{ delete_rows_without_key('object_id', 'select orders.order_id as object_id from '
                                          ~ ref('int_orders__state') ~ ' as orders inner join ' ~ ref('cio_people')
                                          ~ ' as people on orders.customer_id = people.customer_id') }}",
) }}

with

orders as (select * from {{ ref('int_orders__state') }}),

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

{% if incremental_build() -%}
{{ rows_not_held('final', ['object_id']) }}
{%- else -%}
select * from final
{%- endif %}

-- depends_on: {{ ref('cio_objects_orders') }}
-- The export times through which cio_objects_orders' held rows have seen every change
-- (macros/cio_objects_orders_marks.sql): the latest order export and the latest refund export of
-- int_orders__state (apart: one export may run behind the other) and the latest store export of
-- a person of int_identity__people, read after cio_objects_orders ran.
-- Only a build that ran cio_objects_orders moves the order mark, and only one that also ran
-- int_customer_profile__joined, customer_profile and cio_people moves the customer mark:
-- otherwise an incremental build keeps the marks held and a full one leaves them NULL (recompute
-- all).
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key=['source_system', 'source_table'],
    on_schema_change='fail',
) }}
{%- set orders_seen = all_selected(['cio_objects_orders']) %}
{%- set people_seen = all_selected(cio_objects_orders_people_upstream()) %}

with

orders as (select * from {{ ref('int_orders__state') }}),

people as (select * from {{ ref('int_identity__people') }}),

marks as (
    select
        'store' as source_system,
        'orders' as source_table,
        max(orders.orders_last_exported_at) as latest_exported_at,
        {{ 'true' if orders_seen else 'false' }} as is_seen
    from orders

    union all

    select
        'store' as source_system,
        'refunds' as source_table,
        max(orders.refunds_last_exported_at) as latest_exported_at,
        {{ 'true' if orders_seen else 'false' }} as is_seen
    from orders

    union all

    select
        'store' as source_system,
        'customers' as source_table,
        max(people.store_last_exported_at) as latest_exported_at,
        {{ 'true' if people_seen else 'false' }} as is_seen
    from people
),

final as (
    select
        source_system,
        source_table,
        case when is_seen then latest_exported_at end as seen_through
    from marks
    {%- if is_incremental() %}
    where is_seen
    {%- endif %}
)

select * from final

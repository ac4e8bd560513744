-- One row per (store account, email) ever seen together: on a customer snapshot (rule_rank 2,
-- a previous or current email of the account) or only on an order (rule_rank 3), for
-- int_identity__emails.
-- Incremental (macros/incremental.sql): staging rows never change once written, so a build
-- reads only the snapshots exported after the latest snapshot export held and the orders
-- exported after the latest order export held (a mark per input: the orders export may run
-- behind the customers export), and merges each pair they carry with the held one (the lower
-- rank, the later exports); a full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key=['store_customer_id', 'email'],
    on_schema_change='fail',
) }}
{{ require_held_columns(['snapshot_last_exported_at', 'order_last_exported_at']) }}

with

customer_snapshots as (select * from {{ ref('stg_store__customers') }}),

orders as (select * from {{ ref('stg_store__orders') }}),

pairs_exported as (
    select
        store_customer_id,
        email,
        2 as rule_rank,
        exported_at as snapshot_exported_at,
        cast(null as {{ dbt.type_timestamp() }}) as order_exported_at
    from customer_snapshots
    where
        store_customer_id is not null
        and email is not null
    {%- if is_incremental() %}
        and coalesce(exported_at > {{ high_water_mark('snapshot_last_exported_at') }}, true)
    {%- endif %}

    union all

    select
        store_customer_id,
        email,
        3 as rule_rank,
        cast(null as {{ dbt.type_timestamp() }}) as snapshot_exported_at,
        exported_at as order_exported_at
    from orders
    where
        store_customer_id is not null
        and email is not null
    {%- if is_incremental() %}
        and coalesce(exported_at > {{ high_water_mark('order_last_exported_at') }}, true)
    {%- endif %}
),

{% if is_incremental() -%}
-- the held row of each pair read again, so the merged row keeps what older exports said
pairs_held as (
    select
        held.store_customer_id,
        held.email,
        held.rule_rank,
        held.snapshot_last_exported_at as snapshot_exported_at,
        held.order_last_exported_at as order_exported_at
    from {{ this }} as held
    inner join (select distinct store_customer_id, email from pairs_exported) as pairs_read
        on
            held.store_customer_id = pairs_read.store_customer_id
            and held.email = pairs_read.email
),

{% endif -%}

pairs_unioned as (
    select * from pairs_exported
    {%- if is_incremental() %}

    union all

    select * from pairs_held
    {%- endif %}
),

final as (
    select
        store_customer_id,
        email,
        min(rule_rank) as rule_rank,
        max(snapshot_exported_at) as snapshot_last_exported_at,
        max(order_exported_at) as order_last_exported_at
    from pairs_unioned
    group by store_customer_id, email
)

select * from final

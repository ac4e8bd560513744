-- One row per (store account, email) ever seen together: on a customer snapshot (rule_rank 2,
-- a previous or current email of the account) or only on an order (rule_rank 3), for
-- int_identity__emails.
-- Incremental (macros/incremental.sql): staging rows never change once written, so a build
-- reads only the snapshots and orders exported after the latest export held, and merges each
-- pair they carry with the held one (the lower rank, the later export); a full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key=['store_customer_id', 'email'],
    on_schema_change='fail',
) }}

with

customer_snapshots as (select * from {{ ref('stg_store__customers') }}),

orders as (select * from {{ ref('stg_store__orders') }}),

pairs_exported as (
    select
        store_customer_id,
        email,
        2 as rule_rank,
        exported_at
    from customer_snapshots
    where
        store_customer_id is not null
        and email is not null
    {%- if is_incremental() %}
        and (exported_at > {{ high_water_mark('last_exported_at') }} or exported_at is null)
    {%- endif %}

    union all

    select
        store_customer_id,
        email,
        3 as rule_rank,
        exported_at
    from orders
    where
        store_customer_id is not null
        and email is not null
    {%- if is_incremental() %}
        and (exported_at > {{ high_water_mark('last_exported_at') }} or exported_at is null)
    {%- endif %}
),

{% if is_incremental() -%}
-- the held row of each pair read again, so the merged row keeps what older exports said
pairs_held as (
    select
        held.store_customer_id,
        held.email,
        held.rule_rank,
        held.last_exported_at as exported_at
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
        max(exported_at) as last_exported_at
    from pairs_unioned
    group by store_customer_id, email
)

select * from final

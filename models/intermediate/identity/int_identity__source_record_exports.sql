-- Every export of every record of the non-store systems, with the identifiers it carries (a
-- returned order's store customer id included), one row per export: int_identity__source_records
-- matches them to people. Its own table because DuckDB ran out of memory at 10M customers when
-- this union and the three match joins ran as one query (the union alone and the joins over it
-- each fit under a 2 GB cap).
-- Incremental (macros/export_tails.sql): per source system, a build deletes and reads again the
-- exports after the latest one held (less var incremental_lookback_hours); staging appends only
-- after its own latest export, never earlier than this one, so nothing it adds is missed. Returns
-- are read in full: a return's store customer id comes from its order, which may arrive later.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_export_tails_by('source_system', ['subscriptions', 'loyalty', 'reviews', 'back_in_stock', 'web_events']) }}",
) }}
{%- set starts = export_tail_starts_by('source_system') %}
{#- the systems whose records carry only an email: (source_system, CTE, record id column) #}
{%- set email_only_sources = [
    ('loyalty', 'loyalty_accounts', 'loyalty_account_id'),
    ('reviews', 'reviews', 'review_id'),
] %}

with

subscription_events as (select * from {{ ref('stg_subscriptions__subscription_events') }}),

loyalty_accounts as (select * from {{ ref('stg_loyalty__loyalty_accounts') }}),

returns as (select * from {{ ref('stg_returns__returns') }}),

orders as (select * from {{ ref('stg_store__orders') }}),

reviews as (select * from {{ ref('stg_reviews__reviews') }}),

back_in_stock_requests as (select * from {{ ref('stg_back_in_stock__back_in_stock_requests') }}),

web_events as (select * from {{ ref('stg_web_events__web_events') }}),

-- only the orders a return points at: a distinct over every order is a needless big hash table
order_customers as (
    select distinct
        order_id,
        store_customer_id
    from orders
    where order_id in (select returns.order_id from returns)
),

records_unioned as (
    select
        'subscriptions' as source_system,
        subscription_event_id as source_record_id,
        store_customer_id,
        email,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        exported_at
    from subscription_events
    where {{ in_export_tail(starts, 'subscriptions') }}

    union all

    {%- for system, relation, id_column in email_only_sources %}
    select
        '{{ system }}' as source_system,
        {{ id_column }} as source_record_id,
        cast(null as {{ dbt.type_string() }}) as store_customer_id,
        email,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        exported_at
    from {{ relation }}
    where {{ in_export_tail(starts, system) }}

    union all

    {%- endfor %}
    select
        'returns' as source_system,
        returns.return_id as source_record_id,
        order_customers.store_customer_id,
        returns.email,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        returns.exported_at
    from returns
    left join order_customers
        on returns.order_id = order_customers.order_id

    union all

    select
        'back_in_stock' as source_system,
        back_in_stock_request_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as store_customer_id,
        email,
        phone_e164,
        exported_at
    from back_in_stock_requests
    where {{ in_export_tail(starts, 'back_in_stock') }}

    union all

    -- anonymous visitors (no customer id, no email) cannot be matched and are not orphans
    select
        'web_events' as source_system,
        web_event_id as source_record_id,
        store_customer_id,
        email,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        exported_at
    from web_events
    where (store_customer_id is not null or email is not null) and {{ in_export_tail(starts, 'web_events') }}
)

select * from records_unioned

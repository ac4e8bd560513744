-- Recent events (var cio_event_lookback_days) for Customer.io, one row per event with a
-- deterministic event_id (sha256 of source system and source record id) so a resend is a
-- duplicate the destination drops. Extra columns are event data; NULLs are omitted on send.
-- Read top to bottom: each source's events in one shape (one CTE per source), the snapshot
-- sources' deduplicated per source record, all unioned by column name, then kept when recent and
-- of a known person.
-- Only records with an occurrence in the window are read in full (`recent_*` CTEs): a record
-- whose occurrences all lie outside it cannot be a recent event, and a record that has one keeps
-- all its rows, so deduplication picks the same first occurrence as over the whole history (a
-- return opens at its first update: one updated in the window keeps all its updates).
-- Merged whole (macros/changed_rows.sql): the window moves with as_of, so every row is computed,
-- but a build writes only the events that changed, came or left.
{{ config(
    materialized=difference_materialization(),
    incremental_strategy='difference',
    on_schema_change='fail',
    unique_key='event_id',
) }}
{%- set window_start = dbt.dateadd('day', -1 * var('cio_event_lookback_days'), as_of()) %}
{%- set window_end = as_of() %}
{%- set event_columns = [
    'source_system', 'source_record_id', 'customer_id', 'event_name', 'occurred_at',
    'order_id', 'product_id', 'amount', 'status', 'exported_at',
] %}

with

orders as (select * from {{ ref('int_orders__state') }}),

web_events as (select * from {{ ref('stg_web_events__web_events') }}),

subscription_events as (select * from {{ ref('stg_subscriptions__subscription_events') }}),

back_in_stock_requests as (select * from {{ ref('stg_back_in_stock__back_in_stock_requests') }}),

returns as (select * from {{ ref('stg_returns__returns') }}),

{#- per source: its id, its occurrence time, and which of its rows can be events at all -#}
{%- for name, id_column, occurred_column, event_rows in [
    ('web_events', 'web_event_id', 'occurred_at', "web_events.event_name in ('added_to_cart', 'checkout_started')"),
    ('subscription_events', 'subscription_event_id', 'changed_at', 'true'),
    ('back_in_stock_requests', 'back_in_stock_request_id', 'requested_at', 'true'),
    ('returns', 'return_id', 'updated_at', 'true'),
] %}
{{ name }}_in_window as (
    select {{ name }}.{{ id_column }}
    from {{ name }}
    where
        {{ event_rows }}
        and {{ name }}.{{ occurred_column }} > {{ window_start }}
        and {{ name }}.{{ occurred_column }} <= {{ window_end }}
),

recent_{{ name }} as (
    select {{ name }}.*
    from {{ name }}
    where
        {{ event_rows }}
        and {{ name }}.{{ id_column }} in (
            select {{ name }}_in_window.{{ id_column }} from {{ name }}_in_window
        )
),

{% endfor -%}
source_records as (select * from {{ ref('int_identity__source_records') }}),

people as (select * from {{ ref('cio_people') }}),

orders_placed as (
    select
        'store' as source_system,
        order_id as source_record_id,
        customer_id,
        'order_placed' as event_name,
        ordered_at as occurred_at,
        order_id,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(total_price as {{ type_double() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as status,
        last_exported_at as exported_at
    from orders
    where
        not is_voided
        and ordered_at > {{ window_start }} and ordered_at <= {{ window_end }}
),

-- snapshot exports repeat a record once per match: distinct keeps one row per event
carts_started as (
    select distinct
        'web_events' as source_system,
        web_events.web_event_id as source_record_id,
        source_records.customer_id,
        web_events.event_name,
        web_events.occurred_at,
        cast(null as {{ dbt.type_string() }}) as order_id,
        web_events.product_id,
        cast(web_events.cart_value as {{ type_double() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as status,
        web_events.exported_at
    from recent_web_events as web_events
    inner join source_records
        on
            source_records.source_system = 'web_events'
            and web_events.web_event_id = source_records.source_record_id
    where web_events.event_name in ('added_to_cart', 'checkout_started')
),

subscriptions_changed as (
    select distinct
        'subscriptions' as source_system,
        subscription_events.subscription_event_id as source_record_id,
        source_records.customer_id,
        'subscription_status_changed' as event_name,
        subscription_events.changed_at as occurred_at,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ type_double() }}) as amount,
        subscription_events.subscription_status as status,
        subscription_events.exported_at
    from recent_subscription_events as subscription_events
    inner join source_records
        on
            source_records.source_system = 'subscriptions'
            and subscription_events.subscription_event_id = source_records.source_record_id
),

back_in_stock_requested as (
    select distinct
        'back_in_stock' as source_system,
        back_in_stock_requests.back_in_stock_request_id as source_record_id,
        source_records.customer_id,
        'back_in_stock_requested' as event_name,
        back_in_stock_requests.requested_at as occurred_at,
        cast(null as {{ dbt.type_string() }}) as order_id,
        back_in_stock_requests.product_id,
        cast(null as {{ type_double() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as status,
        back_in_stock_requests.exported_at
    from recent_back_in_stock_requests as back_in_stock_requests
    inner join source_records
        on
            source_records.source_system = 'back_in_stock'
            and back_in_stock_requests.back_in_stock_request_id = source_records.source_record_id
),

-- a return opens at its first known update
returns_opened as (
    select
        'returns' as source_system,
        recent_returns.return_id as source_record_id,
        min(source_records.customer_id) as customer_id,
        'return_opened' as event_name,
        min(recent_returns.updated_at) as occurred_at,
        min(recent_returns.order_id) as order_id,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ type_double() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as status,
        max(recent_returns.exported_at) as exported_at
    from recent_returns
    inner join source_records
        on
            source_records.source_system = 'returns'
            and recent_returns.return_id = source_records.source_record_id
    group by recent_returns.return_id
),

-- snapshot sources export the same record several times: keep one row per record, its first
-- occurrence as last exported (a re-export may carry a newer status for the same instant)
snapshot_events_ranked as (
    select
        *,
        row_number() over (
            partition by source_system, source_record_id
            order by occurred_at asc, exported_at desc nulls last
        ) as event_rank
    from (
        {%- for events in ['carts_started', 'subscriptions_changed', 'back_in_stock_requested'] %}
        select
            {{ event_columns | join(',\n            ') }}
        from {{ events }}
        {%- if not loop.last %}

        union all
        {%- endif %}
        {%- endfor %}
    ) as snapshot_events
),

-- orders and returns already have one row per record
events_deduplicated as (
    {%- for events in ['orders_placed', 'returns_opened'] %}
    select
        {{ event_columns | join(',\n        ') }}
    from {{ events }}

    union all
    {%- endfor %}

    select
        {{ event_columns | join(',\n        ') }}
    from snapshot_events_ranked
    where event_rank = 1
),

recent_events_of_known_people as (
    select events_deduplicated.*
    from events_deduplicated
    inner join people
        on events_deduplicated.customer_id = people.customer_id
    where
        events_deduplicated.occurred_at
        > {{ dbt.dateadd('day', -1 * var('cio_event_lookback_days'), as_of()) }}
        and events_deduplicated.occurred_at <= {{ as_of() }}
),

final as (
    select
        {{ sha256_hex(dbt.concat(['source_system', "':'", 'source_record_id'])) }} as event_id,
        customer_id,
        event_name,
        occurred_at,
        order_id,
        product_id,
        amount,
        status
    from recent_events_of_known_people
)

select * from final

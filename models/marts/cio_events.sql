-- Recent events (var cio_event_lookback_days) for Customer.io, one row per event with a
-- deterministic event_id (sha256 of source system and source record id) so a resend is a
-- duplicate the destination drops. Extra columns are event data; NULLs are omitted on send.

with

orders as (select * from {{ ref('int_orders__state') }}),
web_events as (select * from {{ ref('stg_web_events__web_events') }}),
subscription_events as (select * from {{ ref('stg_subscriptions__subscription_events') }}),
back_in_stock_requests as (select * from {{ ref('stg_back_in_stock__back_in_stock_requests') }}),
returns as (select * from {{ ref('stg_returns__returns') }}),
source_records as (select * from {{ ref('int_identity__source_records') }}),
people as (select * from {{ ref('cio_people') }}),

events_unioned as (
    select
        'store' as source_system,
        order_id as source_record_id,
        customer_id,
        'order_placed' as event_name,
        ordered_at as occurred_at,
        order_id,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(total_price as {{ type_double() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as status
    from orders
    where not is_voided

    union all

    select distinct
        'web_events',
        web_events.web_event_id,
        source_records.customer_id,
        web_events.event_name,
        web_events.occurred_at,
        cast(null as {{ dbt.type_string() }}),
        web_events.product_id,
        cast(web_events.cart_value as {{ type_double() }}),
        cast(null as {{ dbt.type_string() }})
    from web_events
    inner join source_records
        on source_records.source_system = 'web_events'
        and web_events.web_event_id = source_records.source_record_id
    where web_events.event_name in ('added_to_cart', 'checkout_started')

    union all

    select distinct
        'subscriptions',
        subscription_events.subscription_event_id,
        source_records.customer_id,
        'subscription_status_changed',
        subscription_events.changed_at,
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ type_double() }}),
        subscription_events.subscription_status
    from subscription_events
    inner join source_records
        on source_records.source_system = 'subscriptions'
        and subscription_events.subscription_event_id = source_records.source_record_id

    union all

    select distinct
        'back_in_stock',
        back_in_stock_requests.back_in_stock_request_id,
        source_records.customer_id,
        'back_in_stock_requested',
        back_in_stock_requests.requested_at,
        cast(null as {{ dbt.type_string() }}),
        back_in_stock_requests.product_id,
        cast(null as {{ type_double() }}),
        cast(null as {{ dbt.type_string() }})
    from back_in_stock_requests
    inner join source_records
        on source_records.source_system = 'back_in_stock'
        and back_in_stock_requests.back_in_stock_request_id = source_records.source_record_id

    union all

    -- a return opens at its first known update
    select
        'returns',
        returns.return_id,
        min(source_records.customer_id),
        'return_opened',
        min(returns.updated_at),
        min(returns.order_id),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ type_double() }}),
        cast(null as {{ dbt.type_string() }})
    from returns
    inner join source_records
        on source_records.source_system = 'returns'
        and returns.return_id = source_records.source_record_id
    group by returns.return_id
),

-- snapshot sources export the same record several times: keep one row per record
events_deduplicated as (
    select
        events_unioned.*,
        row_number() over (
            partition by source_system, source_record_id
            order by occurred_at
        ) as event_rank
    from events_unioned
),

final as (
    select
        {{ sha256_hex(dbt.concat(['events_deduplicated.source_system', "':'", 'events_deduplicated.source_record_id'])) }} as event_id,
        events_deduplicated.customer_id,
        events_deduplicated.event_name,
        events_deduplicated.occurred_at,
        events_deduplicated.order_id,
        events_deduplicated.product_id,
        events_deduplicated.amount,
        events_deduplicated.status
    from events_deduplicated
    inner join people
        on events_deduplicated.customer_id = people.customer_id
    where events_deduplicated.event_rank = 1
        and events_deduplicated.occurred_at > {{ dbt.dateadd('day', -1 * var('cio_event_lookback_days'), as_of()) }}
        and events_deduplicated.occurred_at <= {{ as_of() }}
)

select * from final

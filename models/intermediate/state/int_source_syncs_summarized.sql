-- One row: when each source last exported anything (its last sync).

with

store_customers as (select * from {{ ref('stg_store__customers') }}),

store_orders as (select * from {{ ref('stg_store__orders') }}),

subscription_events as (select * from {{ ref('stg_subscriptions__subscription_events') }}),

loyalty_accounts as (select * from {{ ref('stg_loyalty__loyalty_accounts') }}),

returns as (select * from {{ ref('stg_returns__returns') }}),

reviews as (select * from {{ ref('stg_reviews__reviews') }}),

back_in_stock_requests as (select * from {{ ref('stg_back_in_stock__back_in_stock_requests') }}),

web_events as (select * from {{ ref('stg_web_events__web_events') }}),

exports_unioned as (
    select
        'store' as source_system,
        max(exported_at) as last_synced_at
    from store_customers

    union all

    select
        'store' as source_system,
        max(exported_at) as last_synced_at
    from store_orders

    union all

    select
        'subscriptions' as source_system,
        max(exported_at) as last_synced_at
    from subscription_events

    union all

    select
        'loyalty' as source_system,
        max(exported_at) as last_synced_at
    from loyalty_accounts

    union all

    select
        'returns' as source_system,
        max(exported_at) as last_synced_at
    from returns

    union all

    select
        'reviews' as source_system,
        max(exported_at) as last_synced_at
    from reviews

    union all

    select
        'back_in_stock' as source_system,
        max(exported_at) as last_synced_at
    from back_in_stock_requests

    union all

    select
        'web_events' as source_system,
        max(exported_at) as last_synced_at
    from web_events
),

final as (
    select
    {%- for source_name in ['store', 'subscriptions', 'loyalty', 'returns', 'reviews', 'back_in_stock', 'web_events'] %}
        max(case when source_system = '{{ source_name }}' then last_synced_at end) as {{ source_name }}_last_synced_at
        {{- ',' if not loop.last }}
    {%- endfor %}
    from exports_unioned
)

select * from final

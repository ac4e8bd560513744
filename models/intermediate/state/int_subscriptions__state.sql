-- One row per person with a subscription. Each subscription's status is the one with the
-- latest changed_at (never the latest export: a late export of an older change must not
-- revert it). A person with several subscriptions is active if any is, else paused if any
-- is, else cancelled.

with

subscription_events as (select * from {{ ref('stg_subscriptions__subscription_events') }}),

source_records as (
    select * from {{ ref('int_identity__source_records') }}
    where source_system = 'subscriptions'
),

events_matched as (
    select
        source_records.customer_id,
        subscription_events.subscription_id,
        subscription_events.subscription_status,
        subscription_events.changed_at,
        subscription_events.exported_at
    from subscription_events
    inner join source_records
        on subscription_events.subscription_event_id = source_records.source_record_id
    where source_records.customer_id is not null
),

subscriptions_latest as (
    select distinct
        customer_id,
        subscription_id,
        {{ latest_known('subscription_status', 'customer_id, subscription_id', 'changed_at desc, exported_at desc') }}
            as subscription_status,
        {{ latest_known_at(
            'subscription_status', 'changed_at', 'customer_id, subscription_id', 'changed_at desc, exported_at desc',
        ) }}
            as subscription_status_updated_at,
        max(exported_at) over (partition by customer_id) as last_exported_at
    from events_matched
),

subscriptions_ranked as (
    select
        subscriptions_latest.*,
        row_number() over (
            partition by subscriptions_latest.customer_id
            order by
                case subscriptions_latest.subscription_status when 'active' then 1 when 'paused' then 2 else 3 end,
                subscriptions_latest.subscription_status_updated_at desc
        ) as subscription_rank
    from subscriptions_latest
),

final as (
    select
        customer_id,
        subscription_status,
        subscription_status_updated_at,
        last_exported_at as subscriptions_last_exported_at
    from subscriptions_ranked
    where subscription_rank = 1
)

select * from final

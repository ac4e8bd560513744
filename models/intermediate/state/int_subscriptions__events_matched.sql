-- Every subscription event of a known person: the event joined to its identity record (one row
-- per event export). Feeds the per-person state (int_subscriptions__state) and the
-- per-subscription Customer.io objects (cio_objects_subscriptions).

with

subscription_events as (select * from {{ ref('stg_subscriptions__subscription_events') }}),

source_records as (
    select * from {{ ref('int_identity__source_records') }}
    where source_system = 'subscriptions'
),

final as (
    select
        source_records.customer_id,
        subscription_events.subscription_event_id,
        subscription_events.subscription_id,
        subscription_events.subscription_status,
        subscription_events.changed_at,
        subscription_events.exported_at
    from subscription_events
    inner join source_records
        on subscription_events.subscription_event_id = source_records.source_record_id
    where source_records.customer_id is not null
)

select * from final

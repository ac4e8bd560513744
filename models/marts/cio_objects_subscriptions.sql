-- Customer.io objects of the subscription type (exposure cio_objects_subscriptions,
-- object_type_id 2): one row per subscription of a person Customer.io knows. Each subscription's
-- status is the one with the latest changed_at (a late export of an older change never reverts
-- it), as in int_subscriptions__state, but kept per subscription instead of per person.
-- Merged whole (macros/changed_rows.sql): a build writes only the subscriptions whose row changed.
{{ config(
    materialized=difference_materialization(),
    incremental_strategy='difference',
    on_schema_change='fail',
    unique_key='object_id',
) }}

with

events_matched as (
    select * from {{ ref('int_subscriptions__events_matched') }}
    where subscription_id is not null
),

people as (select * from {{ ref('cio_people') }}),

subscriptions_latest as (
    select distinct
        subscription_id,
        {{ latest_known('customer_id', 'subscription_id', 'changed_at desc, exported_at desc') }} as customer_id,
        {{ latest_known('subscription_status', 'subscription_id', 'changed_at desc, exported_at desc') }} as status,
        {{ latest_known_at(
            'subscription_status', 'changed_at', 'subscription_id', 'changed_at desc, exported_at desc',
        ) }} as status_updated_at,
        min(changed_at) over (partition by subscription_id) as started_at
    from events_matched
),

final as (
    select
        subscriptions_latest.subscription_id as object_id,
        subscriptions_latest.customer_id,
        subscriptions_latest.status,
        subscriptions_latest.started_at,
        subscriptions_latest.status_updated_at
    from subscriptions_latest
    inner join people
        on subscriptions_latest.customer_id = people.customer_id
)

select * from final

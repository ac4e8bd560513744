-- One row per person with a subscription. Each subscription's status is the one with the
-- latest changed_at (never the latest export: a late export of an older change must not
-- revert it). A person with several subscriptions is active if any is, else paused if any
-- is, else cancelled.
-- Incremental (macros/incremental.sql): a build recomputes the people with a subscription
-- export newer than the latest held, or whose matched events changed; a full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='customer_id',
    on_schema_change='fail',
    post_hook="{{ delete_people_without_records('subscriptions') }}",
) }}

with

events_matched as (select * from {{ ref('int_subscriptions__events_matched') }}),

{{ source_records_checksummed('subscriptions') }},

events_in_scope as (
    select * from events_matched
    {%- if is_incremental() %}
    where customer_id in ({{ people_to_refresh('events_matched', 'records_checksummed', 'subscriptions_last_exported_at') }})
    {%- endif %}
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
    from events_in_scope
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
        subscriptions_ranked.customer_id,
        subscriptions_ranked.subscription_status,
        subscriptions_ranked.subscription_status_updated_at,
        subscriptions_ranked.last_exported_at as subscriptions_last_exported_at,
        records_checksummed.source_records_checksum
    from subscriptions_ranked
    inner join records_checksummed
        on subscriptions_ranked.customer_id = records_checksummed.customer_id
    where subscriptions_ranked.subscription_rank = 1
)

select * from final

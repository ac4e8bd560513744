-- One row per person for Customer.io identify calls: a stable id (customer_id), the email and
-- flat attributes. Every column but customer_id becomes a person attribute. Everyone gets a
-- profile, with or without a valid email: segments are keyed by customer_id, and Customer.io
-- silently ignores segment ids of people it does not know.
-- last_synced_at: the oldest last export of the sources that decide is_data_fresh (var
-- freshness_window_hours), cut to the day so a person is re-sent at most once a day for it.
-- Kept by difference (macros/changed_rows.sql): a build writes only the people whose row changed.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='customer_id',
    on_schema_change='fail',
    post_hook="{{ delete_rows_without_key('customer_id', 'select customer_id from ' ~ ref('customer_profile'),
                                          keys_unique=true) }}",
) }}
{%- set fresh_sources = var('freshness_window_hours').keys() | list %}

with

profile as (select * from {{ ref('customer_profile') }}),

final as (
    select
        customer_id,
        email,
        first_name,
        subscription_status,
        vip_tier,
        ltv_tier,
        aov_tier,
        return_status,
        holdout_group,
        loyalty_points,
        cast(order_count as integer) as order_count,
        cast(lifetime_value as {{ type_double() }}) as lifetime_value,
        has_active_subscription,
        has_open_return,
        is_winback_eligible,
        is_discount_eligible,
        is_data_fresh,
        created_at,
        last_order_at,
        subscription_status_updated_at,
        vip_tier_updated_at,
        loyalty_points_updated_at,
        cast(
            {{ dbt.date_trunc(
                'day',
                'least(' ~ (fresh_sources | map('string') | join('_last_synced_at, ')) ~ '_last_synced_at)',
            ) }}
            as {{ dbt.type_timestamp() }}
        ) as last_synced_at
    from profile
)

{% if incremental_build() -%}
{{ rows_not_held('final', ['customer_id']) }}
{%- else -%}
select * from final
{%- endif %}

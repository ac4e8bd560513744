-- One row per person: int_customer_profile__joined (state, order totals, tiers, holdout; a
-- table kept by difference) with what moves in every build added here, read top to bottom:
-- each source's last sync, then the flags that compare times with as_of, then the eligibility
-- rules built on those flags. A view: these columns change for every person whenever as_of
-- moves or a source exports, and computing them where they are read costs less than
-- rewriting a million rows per build.
{{ config(materialized='view') }}

with

profile_state as (select * from {{ ref('int_customer_profile__joined') }}),

source_syncs as (select * from {{ ref('int_source_syncs_summarized') }}),

syncs_joined as (
    select
        profile_state.*,
        source_syncs.store_last_synced_at,
        source_syncs.subscriptions_last_synced_at,
        source_syncs.returns_last_synced_at,
        source_syncs.reviews_last_synced_at,
        source_syncs.back_in_stock_last_synced_at,
        source_syncs.web_events_last_synced_at,
        -- loyalty exports every account on every sync: an account missing from recent
        -- exports has stopped syncing even while the source as a whole is healthy
        coalesce(
            profile_state.loyalty_last_exported_at, source_syncs.loyalty_last_synced_at
        ) as loyalty_last_synced_at
    from profile_state
    cross join source_syncs
),

flags_derived as (
    select
        *,
        coalesce(
            last_order_at > {{ dbt.dateadd('day', -1 * var('recent_purchase_days'), as_of()) }},
            false
        ) as is_recent_purchaser,
        -- fresh: every sensitive source synced within its var freshness_window_hours window
        coalesce(
            {%- for source_name, hours in var('freshness_window_hours').items() %}
            {{ source_name }}_last_synced_at > {{ dbt.dateadd('hour', -1 * hours, as_of()) }}
            {%- if not loop.last %} and{% endif %}
            {%- endfor %},
            false
        ) as is_data_fresh
    from syncs_joined
),

eligibility_derived as (
    select
        *,
        order_count > 0
        and last_order_at <= {{ dbt.dateadd('day', -1 * var('lapsed_window_days')[0], as_of()) }}
        and not has_active_subscription
        and is_discount_eligible as is_winback_eligible,
        -- sensitive (treatment) audiences take only consenting, fresh, non-holdout people
        accepts_marketing
        and is_data_fresh
        and holdout_group = 'treatment' as is_treatment_eligible
    from flags_derived
),

final as (
    select
        customer_id,
        email,
        phone_e164,
        email_sha256,
        phone_sha256,
        first_name,
        last_name,
        country_code,
        subscription_status,
        vip_tier,
        ltv_tier,
        aov_tier,
        return_status,
        holdout_group,
        loyalty_points,
        order_count,
        gross_revenue,
        refunded_amount,
        lifetime_value,
        average_order_value,
        refund_share,
        accepts_marketing,
        has_active_subscription,
        has_open_return,
        is_recent_purchaser,
        is_discount_eligible,
        is_winback_eligible,
        is_data_fresh,
        is_treatment_eligible,
        created_at,
        first_order_at,
        last_order_at,
        last_refunded_at,
        open_return_opened_at,
        subscription_status_updated_at,
        vip_tier_updated_at,
        loyalty_points_updated_at,
        return_status_updated_at,
        store_last_synced_at,
        subscriptions_last_synced_at,
        loyalty_last_synced_at,
        returns_last_synced_at,
        reviews_last_synced_at,
        back_in_stock_last_synced_at,
        web_events_last_synced_at
    from eligibility_derived
)

select * from final

{%- set vip_tiers = "'" ~ var('vip_tiers') | join("', '") ~ "'" %}

with

profile as (select * from {{ ref('customer_profile') }}),

members_selected as (
    select
        customer_id,
        email_sha256,
        phone_sha256,
        coalesce(vip_tier_updated_at, last_order_at, created_at) as entered_at
    from profile
    where
        (
            vip_tier in ({{ vip_tiers }})
            or ltv_tier = 'high'
        )
        and is_treatment_eligible
),

final as (
    select
        {{ audience_columns('aud_vip_high_ltv', 'VIP_High_LTV_Current') | indent(8) }}
    from members_selected
)

select * from final

with

profile as (select * from {{ ref('customer_profile') }}),

members_selected as (
    select
        customer_id,
        email_sha256,
        phone_sha256,
        {{ dbt.dateadd('day', var('lapsed_window_days')[2], 'last_order_at') }} as entered_at
    from profile
    where
        is_winback_eligible
        and aov_tier <> 'high'
        and {{ in_age_window('last_order_at', var('lapsed_window_days')[2], none) }}
        and is_treatment_eligible
),

final as (
    select
        {{ audience_columns(
            'aud_lapsed_120d_plus',
            'Lapsed_120d-Plus__NoPurchase_NoOpenReturn',
            'lapsed',
        ) | indent(8) }}
    from members_selected
)

select * from final

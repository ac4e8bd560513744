with

profile as (select * from {{ ref('customer_profile') }}),

members_selected as (
    select
        customer_id,
        email_sha256,
        phone_sha256,
        {{ dbt.dateadd('day', var('cross_sell_window_days')[0], 'last_order_at') }} as entered_at
    from profile
    where
        {{ in_age_window('last_order_at', var('cross_sell_window_days')[0], var('cross_sell_window_days')[1]) }}
        and not has_open_return
        and is_treatment_eligible
),

final as (
    select
        {{ audience_columns(
            'aud_post_purchase_cross_sell_7_21d',
            'Post_Purchase_Cross_Sell_7-21d__NoOpenReturn',
            'post_purchase',
        ) | indent(8) }}
    from members_selected
)

select * from final

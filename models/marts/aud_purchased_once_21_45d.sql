with

profile as (select * from {{ ref('customer_profile') }}),

members_selected as (
    select
        customer_id,
        email_sha256,
        phone_sha256,
        {{ dbt.dateadd('day', var('purchased_once_window_days')[0], 'last_order_at') }} as entered_at
    from profile
    where
        order_count = 1
        and {{ in_age_window(
            'last_order_at',
            var('purchased_once_window_days')[0],
            var('purchased_once_window_days')[1],
        ) }}
        and not has_open_return
        and is_treatment_eligible
),

final as (
    select
        {{ audience_columns(
            'aud_purchased_once_21_45d',
            'Purchased_Once_21-45d__NoOpenReturn',
            'post_purchase',
        ) | indent(8) }}
    from members_selected
)

select * from final

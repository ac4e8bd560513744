with

profile as (select * from {{ ref('customer_profile') }}),
carts as (select * from {{ ref('int_carts_abandoned') }}),

members_selected as (
    select
        profile.customer_id,
        profile.email_sha256,
        profile.phone_sha256,
        carts.carted_at as entered_at
    from carts
    inner join profile
        on carts.customer_id = profile.customer_id
    where carts.cart_window = '0_1d'
        and carts.cart_value_tier = 'high'
        and not carts.has_ordered_since
        and not profile.is_recent_purchaser
        and profile.is_treatment_eligible
),

final as (
    select
        {{ audience_columns('aud_cart_abandon_high_value_0_1d', 'Cart_Abandon_High_Value_0-1d__NoPurchase', 'cart_recovery') | indent(8) }}
    from members_selected
)

select * from final

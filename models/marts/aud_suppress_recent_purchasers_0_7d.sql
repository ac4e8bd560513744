with

profile as (select * from {{ ref('customer_profile') }}),

members_selected as (
    select
        customer_id,
        email_sha256,
        phone_sha256,
        last_order_at as entered_at
    from profile
    where is_recent_purchaser
),

final as (
    select
        {{ audience_columns('aud_suppress_recent_purchasers_0_7d', 'Suppress_Recent_Purchasers_0-7d') | indent(8) }}
    from members_selected
)

select * from final

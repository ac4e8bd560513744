with

profile as (select * from {{ ref('customer_profile') }}),

members_selected as (
    select
        customer_id,
        email_sha256,
        phone_sha256,
        coalesce(last_refunded_at, open_return_opened_at, return_status_updated_at, created_at) as entered_at
    from profile
    where not is_discount_eligible
),

final as (
    select
        {{ audience_columns('aud_suppress_no_discount', 'Suppress_No_Discount_Current') | indent(8) }}
    from members_selected
)

select * from final

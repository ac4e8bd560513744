with

profile as (select * from {{ ref('customer_profile') }}),

members_selected as (
    select
        customer_id,
        email_sha256,
        phone_sha256,
        coalesce(open_return_opened_at, return_status_updated_at) as entered_at
    from profile
    where has_open_return
),

final as (
    select
        {{ audience_columns('aud_suppress_open_returns', 'Suppress_Open_Returns_Current') | indent(8) }}
    from members_selected
)

select * from final

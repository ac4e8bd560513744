-- Store accounts that share a current email are one person (the same shopper with a second
-- account): the earliest-created account's id becomes the person's customer_id, which no later
-- account can displace. Each merge is listed in identity_conflicts.

with

store_customers as (select * from {{ ref('int_store_customers_merged') }}),

anchors_ranked as (
    select
        store_customer_id,
        email,
        first_value(store_customer_id) over (
            partition by coalesce(email, store_customer_id)
            order by created_at, store_customer_id
            rows between unbounded preceding and unbounded following
        ) as customer_id
    from store_customers
),

final as (
    select
        store_customer_id,
        customer_id,
        email,
        store_customer_id <> customer_id as is_merged
    from anchors_ranked
)

select * from final

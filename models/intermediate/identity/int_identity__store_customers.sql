-- Store customer id -> person (customer_id), read from the persistent identity map
-- (int_identity__store_account_map), with each account's current email. Each merge is listed
-- in identity_conflicts.

with

account_map as (select * from {{ ref('int_identity__store_account_map') }}),

store_customers as (select * from {{ ref('int_store_customers_merged') }}),

final as (
    select
        account_map.store_customer_id,
        account_map.customer_id,
        store_customers.email,
        account_map.store_customer_id <> account_map.customer_id as is_merged,
        account_map.assignment_rule
    from account_map
    inner join store_customers
        on account_map.store_customer_id = store_customers.store_customer_id
)

select * from final

with

store_customers as (select * from {{ ref('int_store_customers_merged') }}),

customer_map as (select * from {{ ref('int_identity__store_customers') }}),

accounts_ranked as (
    select
        customer_map.customer_id,
        store_customers.*,
        row_number() over (
            partition by customer_map.customer_id
            order by
                case when store_customers.store_customer_id = customer_map.customer_id then 0 else 1 end,
                store_customers.created_at
        ) as account_rank,
        min(store_customers.created_at) over (partition by customer_map.customer_id) as first_created_at,
        max(store_customers.last_exported_at) over (partition by customer_map.customer_id) as store_last_exported_at
    from store_customers
    inner join customer_map
        on store_customers.store_customer_id = customer_map.store_customer_id
),

final as (
    select
        customer_id,
        email,
        phone_e164,
        {{ sha256_hex('email') }} as email_sha256,
        {{ sha256_hex('phone_e164') }} as phone_sha256,
        first_name,
        last_name,
        country_code,
        accepts_marketing,
        first_created_at as created_at,
        store_last_exported_at
    from accounts_ranked
    where account_rank = 1
)

select * from final

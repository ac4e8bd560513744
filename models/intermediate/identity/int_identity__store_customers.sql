-- Store customer id -> person (customer_id), read from the persistent identity map
-- (int_identity__store_account_map), with each account's current email. Each merge is listed
-- in identity_conflicts.
-- Incremental (macros/incremental.sql): a map row never changes, so a build recomputes only the
-- accounts not held yet and those whose current email changed; a full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='store_customer_id',
    on_schema_change='fail',
) }}

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
    {%- if is_incremental() %}
    left join {{ this }} as held
        on account_map.store_customer_id = held.store_customer_id
    where
        held.store_customer_id is null
        or held.email is distinct from store_customers.email
    {%- endif %}
)

select * from final

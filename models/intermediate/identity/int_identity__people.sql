-- depends_on: {{ ref('stg_store__customers') }}
-- One row per person: the anchor account's contact details (the account whose id is the
-- customer_id, else the earliest-created, ties broken by id as the identity map does), the
-- earliest creation and the latest store export.
-- Incremental (macros/incremental.sql): a person changes only when one of their accounts gets a
-- new snapshot (the identity map never moves an account, and a new account arrives with its
-- first snapshot), so a build recomputes the people with an account exported after the latest
-- store export held (or with no export time); a full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='customer_id',
    on_schema_change='fail',
) }}

with

store_customers as (select * from {{ ref('int_store_customers_merged') }}),

customer_map as (
    select * from {{ ref('int_identity__store_customers') }}
    {%- if is_incremental() %}
    where customer_id in (
        select changed_map.customer_id
        from {{ ref('int_identity__store_customers') }} as changed_map
        inner join {{ ref('int_store_customers_merged') }} as changed_accounts
            on changed_map.store_customer_id = changed_accounts.store_customer_id
        where coalesce(changed_accounts.last_exported_at > {{ high_water_mark('store_last_exported_at') }}, true)

        union

        select changed_map.customer_id
        from {{ ref('int_identity__store_customers') }} as changed_map
        inner join {{ ref('stg_store__customers') }} as snapshots_without_export_time
            on changed_map.store_customer_id = snapshots_without_export_time.store_customer_id
        where snapshots_without_export_time.exported_at is null
    )
    {%- endif %}
),

accounts_ranked as (
    select
        customer_map.customer_id,
        store_customers.*,
        row_number() over (
            partition by customer_map.customer_id
            order by
                case when store_customers.store_customer_id = customer_map.customer_id then 0 else 1 end,
                store_customers.created_at nulls last,
                store_customers.store_customer_id
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

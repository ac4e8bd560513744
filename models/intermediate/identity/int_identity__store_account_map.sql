-- The persistent identity map: store customer id -> person (customer_id). Incremental and
-- append-only: each build adds the store accounts it has not seen, and never changes a row
-- it wrote, so a customer_id once assigned never moves to another person, whatever arrives
-- later. A new account joins the person that already holds its current email (the earliest
-- created if several do); new accounts sharing an email with no existing person become one
-- new person anchored on the earliest-created of them; any other account is its own person.
-- `dbt build --full-refresh` is the only way to recompute it (every id is then assigned anew
-- by earliest creation), e.g. after merging two profiles in Customer.io.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}

with

store_customers as (select * from {{ ref('int_store_customers_merged') }}),

assigned as (
    {% if is_incremental() -%}
    select store_customer_id, customer_id from {{ this }}
    {%- else -%}
    select
        cast(null as {{ dbt.type_string() }}) as store_customer_id,
        cast(null as {{ dbt.type_string() }}) as customer_id
    where 1 = 0
    {%- endif %}
),

new_accounts as (
    select store_customers.*
    from store_customers
    left join assigned
        on store_customers.store_customer_id = assigned.store_customer_id
    where assigned.store_customer_id is null
),

-- the people that already hold each current email, earliest-created first
email_holders as (
    select
        store_customers.email,
        assigned.customer_id,
        min(store_customers.created_at) as person_created_at
    from assigned
    inner join store_customers
        on assigned.store_customer_id = store_customers.store_customer_id
    where store_customers.email is not null
    group by store_customers.email, assigned.customer_id
),

email_holders_ranked as (
    select
        email,
        customer_id,
        row_number() over (partition by email order by person_created_at, customer_id) as holder_rank
    from email_holders
),

new_accounts_anchored as (
    select
        new_accounts.store_customer_id,
        email_holders_ranked.customer_id as existing_customer_id,
        first_value(new_accounts.store_customer_id) over (
            partition by coalesce(new_accounts.email, new_accounts.store_customer_id)
            order by new_accounts.created_at, new_accounts.store_customer_id
            rows between unbounded preceding and unbounded following
        ) as new_anchor_id
    from new_accounts
    left join email_holders_ranked
        on
            new_accounts.email = email_holders_ranked.email
            and email_holders_ranked.holder_rank = 1
),

final as (
    select
        store_customer_id,
        coalesce(existing_customer_id, new_anchor_id) as customer_id,
        case
            when existing_customer_id is not null then 'joined_existing_person_by_email'
            when new_anchor_id <> store_customer_id then 'joined_new_person_by_email'
            else 'new_person'
        end as assignment_rule,
        {{ as_of() }} as assigned_as_of
    from new_accounts_anchored
)

select * from final

-- One row per (email, person) candidate; is_match marks the person an email belongs to, for
-- matching the other systems' records.
-- Rules, in order: a store account's current email; an email the account used before
-- (changed emails keep matching); the email on a store order. Among several people the
-- earliest-created wins; the losers are listed in identity_conflicts.
-- Merged whole (macros/changed_rows.sql): an email's match depends on every person sharing it, so
-- every row is computed, but a build writes only the rows that changed.
{{ config(
    materialized=difference_materialization(),
    incremental_strategy='difference',
    on_schema_change='fail',
    unique_key=['email', 'customer_id'],
) }}

with

account_emails as (select * from {{ ref('int_identity__account_emails') }}),

customer_map as (select * from {{ ref('int_identity__store_customers') }}),

people as (select * from {{ ref('int_identity__people') }}),

candidates_unioned as (
    select
        email,
        customer_id,
        1 as rule_rank
    from customer_map
    where email is not null

    union all

    select
        account_emails.email,
        customer_map.customer_id,
        account_emails.rule_rank
    from account_emails
    inner join customer_map
        on account_emails.store_customer_id = customer_map.store_customer_id
),

candidates_collapsed as (
    select
        email,
        customer_id,
        min(rule_rank) as rule_rank
    from candidates_unioned
    group by email, customer_id
),

candidates_ranked as (
    select
        candidates_collapsed.email,
        candidates_collapsed.customer_id,
        candidates_collapsed.rule_rank,
        row_number() over (
            partition by candidates_collapsed.email
            order by candidates_collapsed.rule_rank, people.created_at, candidates_collapsed.customer_id
        ) as candidate_rank
    from candidates_collapsed
    inner join people
        on candidates_collapsed.customer_id = people.customer_id
),

final as (
    select
        email,
        customer_id,
        case rule_rank
            when 1 then 'current_store_email'
            when 2 then 'previous_store_email'
            else 'order_email'
        end as match_rule,
        candidate_rank = 1 as is_match
    from candidates_ranked
)

select * from final

-- Every identity problem the resolver met, with the rule that settled it. Nothing is dropped
-- silently: a record that matched nobody is listed here with its source.
-- Merged whole (macros/changed_rows.sql): a build writes only the conflicts that came, changed or went.
{{ config(
    materialized=difference_materialization(),
    incremental_strategy='difference',
    on_schema_change='fail',
    unique_key='conflict_id',
) }}

with

customer_snapshots as (select * from {{ ref('stg_store__customers') }}),

customer_map as (select * from {{ ref('int_identity__store_customers') }}),

emails as (select * from {{ ref('int_identity__emails') }}),

source_records as (select * from {{ ref('int_identity__source_records') }}),

shared_emails as (
    select
        'shared_email' as conflict_type,
        'store' as source_system,
        store_customer_id as source_record_id,
        email,
        customer_id,
        case assignment_rule
            when 'joined_existing_person_by_email'
                then
                    'arrived sharing the current email of an existing person and joined that person; '
                    || 'a customer_id never moves, even to an account created earlier (identity map)'
            else 'store customers sharing a current email are one person; merged into the earliest-created account'
        end as resolution
    from customer_map
    where is_merged
),

-- accounts assigned to different people that now share a current email (an email changed
-- after both were mapped): kept apart, because a customer_id never moves. Merging them is a
-- decision for a person: Customer.io's Track API v2 `person` operation with action `merge`
-- ({"type": "person", "action": "merge", "primary": {"id": ...}, "secondary": {"id": ...}})
-- merges the secondary profile into the primary and deletes it, irreversibly
-- (https://customer.io/docs/journeys/people/manage/merge-people/); then a --full-refresh of the
-- identity map gives the warehouse the same single person.
emails_of_several_people as (
    select email
    from customer_map
    where email is not null
    group by email
    having min(customer_id) <> max(customer_id)
),

several_people_per_email as (
    select
        'email_shared_by_several_people' as conflict_type,
        'store' as source_system,
        customer_map.store_customer_id as source_record_id,
        customer_map.email,
        customer_map.customer_id,
        'kept as separate people: a customer_id never moves. If they are one person, merge their '
        || 'Customer.io profiles (its merge API keeps the primary and deletes the secondary), then '
        || 'rebuild the map with dbt build --full-refresh --select int_identity__store_account_map+' as resolution
    from customer_map
    inner join emails_of_several_people
        on customer_map.email = emails_of_several_people.email
),

changed_emails as (
    select distinct
        'email_changed' as conflict_type,
        'store' as source_system,
        customer_snapshots.store_customer_id as source_record_id,
        customer_snapshots.email,
        customer_map.customer_id,
        'previous email kept as a match key for the same person; the latest email is the contact' as resolution
    from customer_snapshots
    inner join customer_map
        on customer_snapshots.store_customer_id = customer_map.store_customer_id
    where
        customer_snapshots.email is not null
        and customer_snapshots.email <> customer_map.email
),

contested_emails as (
    select
        'email_matches_several_customers' as conflict_type,
        'store' as source_system,
        losers.customer_id as source_record_id,
        losers.email,
        winners.customer_id,
        {{ dbt.concat([
            "'email resolves to the '", 'winners.match_rule', "' of the earliest-created person'",
        ]) }} as resolution
    from emails as losers
    inner join emails as winners
        on
            losers.email = winners.email
            and winners.is_match
    where not losers.is_match
),

orphans as (
    select
        'no_matching_customer' as conflict_type,
        source_system,
        source_record_id,
        email,
        customer_id,
        'record matches no store customer by id, email or phone; kept out of audiences' as resolution
    from source_records
    where customer_id is null
),

conflicts_unioned as (
    select * from shared_emails
    union all
    select * from several_people_per_email
    union all
    select * from changed_emails
    union all
    select * from contested_emails
    union all
    select * from orphans
),

final as (
    select
        {{ sha256_hex(dbt.concat([
            'conflict_type', "'|'", 'source_system', "'|'", 'source_record_id', "'|'", "coalesce(email, '')",
        ])) }}
            as conflict_id,
        conflict_type,
        source_system,
        source_record_id,
        customer_id,
        email,
        resolution
    from conflicts_unioned
)

select * from final

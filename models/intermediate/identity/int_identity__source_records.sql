-- Every record of the non-store systems, matched to a person. Precedence, highest first:
-- the store customer id it carries (or its order's), then its email, then its phone. A record
-- exported several times takes its best match over all its exports (a store id in any export
-- beats an email in another); among equally good matches the latest export wins. Unmatched
-- records keep a NULL customer_id and appear in identity_conflicts as orphans.
-- Incremental (macros/source_records_marks.sql): a build matches again only the records with a
-- new export and those whose store id, email or phone belongs to a person whose store account
-- changed since the marks in int_identity__source_records_matched_through; a full rebuild on Spark.
-- depends_on: {{ ref('stg_store__customers') }}
-- depends_on: {{ ref('stg_store__orders') }}
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key=['source_system', 'source_record_id'],
    on_schema_change='fail',
) }}
{%- set match_precedence = ['store_customer_id', 'email', 'phone'] %}
{%- set starts = source_records_match_starts() %}
{%- set export_starts = {} %}
{%- for key, start in starts.items() if key.endswith('.source_record_exports') %}
{%- do export_starts.update({key.split('.')[0]: start}) %}
{%- endfor %}

with

records_unioned as (select * from {{ ref('int_identity__source_record_exports') }}),

customer_map as (select * from {{ ref('int_identity__store_customers') }}),

emails as (
    select * from {{ ref('int_identity__emails') }}
    where is_match
),

people as (select * from {{ ref('int_identity__people') }}),

{%- if incremental_build() %}

-- store accounts with a snapshot or an order exported after the store marks, and their people
changed_accounts as (
    select store_customer_id
    from {{ ref('stg_store__customers') }}
    where {{ exported_after('exported_at', starts.get('store.customers')) }}

    union

    select store_customer_id
    from {{ ref('stg_store__orders') }}
    where {{ exported_after('exported_at', starts.get('store.orders')) }}
),

changed_people as (
    select customer_id
    from {{ ref('int_identity__store_customers') }}
    where store_customer_id in (select changed_accounts.store_customer_id from changed_accounts)
),

-- the records whose match can have moved (the big inputs are read through ref(), not through
-- their CTEs, so that DuckDB does not materialize a CTE read several times)
records_to_match as (
    select
        source_system,
        source_record_id
    from {{ ref('int_identity__source_record_exports') }}
    where
        source_system not in ('{{ export_starts.keys() | join("', '") }}')
        {%- for system, start in export_starts.items() %}
        or (source_system = '{{ system }}' and {{ exported_after('exported_at', start) }})
        {%- endfor %}

    union

    select
        source_system,
        source_record_id
    from {{ ref('int_identity__source_record_exports') }}
    where store_customer_id in (select changed_accounts.store_customer_id from changed_accounts)

    union

    select
        source_system,
        source_record_id
    from {{ ref('int_identity__source_record_exports') }}
    where email in (
        select candidates.email
        from {{ ref('int_identity__emails') }} as candidates
        where candidates.customer_id in (select changed_people.customer_id from changed_people)
    )

    union

    select
        source_system,
        source_record_id
    from {{ ref('int_identity__source_record_exports') }}
    where phone_e164 in (
        select people_changed.phone_e164
        from {{ ref('int_identity__people') }} as people_changed
        where people_changed.customer_id in (select changed_people.customer_id from changed_people)
    )

    union

    -- a person's previous phone: the records it matched to them
    select
        source_system,
        source_record_id
    from {{ this }}
    where match_rule = 'phone' and customer_id in (select changed_people.customer_id from changed_people)
),

-- a semi-join (not an inner join, which DuckDB ordered after the joins below, over every export)
records_in_scope as (
    select records_unioned.*
    from records_unioned
    where exists (
        select 1
        from records_to_match
        where
            records_unioned.source_system = records_to_match.source_system
            and records_unioned.source_record_id = records_to_match.source_record_id
    )
),

{%- else %}

records_in_scope as (select * from records_unioned),

{%- endif %}

records_matched as (
    select
        records_in_scope.source_system,
        records_in_scope.source_record_id,
        records_in_scope.store_customer_id,
        records_in_scope.email,
        records_in_scope.phone_e164,
        records_in_scope.exported_at,
        coalesce(customer_map.customer_id, emails.customer_id, phones.customer_id) as customer_id,
        case
            when customer_map.customer_id is not null then 'store_customer_id'
            when emails.customer_id is not null then 'email'
            when phones.customer_id is not null then 'phone'
        end as match_rule
    from records_in_scope
    left join customer_map
        on records_in_scope.store_customer_id = customer_map.store_customer_id
    left join emails
        on records_in_scope.email = emails.email
    left join people as phones
        on records_in_scope.phone_e164 = phones.phone_e164
),

-- a record exported several times (or a phone shared by two people) collapses to its best
-- match: by match_precedence, then the latest export
records_ranked as (
    select
        *,
        row_number() over (
            partition by source_system, source_record_id
            order by
                case match_rule
                    {%- for rule in match_precedence %}
                    when '{{ rule }}' then {{ loop.index }}
                    {%- endfor %}
                    else {{ match_precedence | length + 1 }}
                end,
                exported_at desc,
                customer_id asc
        ) as record_rank
    from records_matched
),

final as (
    select
        source_system,
        source_record_id,
        customer_id,
        match_rule,
        store_customer_id,
        email,
        phone_e164
    from records_ranked
    where record_rank = 1
)

select * from final

-- Every record of the non-store systems, matched to a person. Precedence, highest first:
-- the store customer id it carries (or its order's), then its email, then its phone. A record
-- exported several times takes its best match over all its exports (a store id in any export
-- beats an email in another); among equally good matches the latest export wins. Unmatched
-- records keep a NULL customer_id and appear in identity_conflicts as orphans.
{%- set match_precedence = ['store_customer_id', 'email', 'phone'] %}

with

records_unioned as (select * from {{ ref('int_identity__source_record_exports') }}),

customer_map as (select * from {{ ref('int_identity__store_customers') }}),

emails as (
    select * from {{ ref('int_identity__emails') }}
    where is_match
),

people as (select * from {{ ref('int_identity__people') }}),

records_matched as (
    select
        records_unioned.source_system,
        records_unioned.source_record_id,
        records_unioned.store_customer_id,
        records_unioned.email,
        records_unioned.phone_e164,
        records_unioned.exported_at,
        coalesce(customer_map.customer_id, emails.customer_id, phones.customer_id) as customer_id,
        case
            when customer_map.customer_id is not null then 'store_customer_id'
            when emails.customer_id is not null then 'email'
            when phones.customer_id is not null then 'phone'
        end as match_rule
    from records_unioned
    left join customer_map
        on records_unioned.store_customer_id = customer_map.store_customer_id
    left join emails
        on records_unioned.email = emails.email
    left join people as phones
        on records_unioned.phone_e164 = phones.phone_e164
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

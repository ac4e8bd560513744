-- Every record of the non-store systems, matched to a person. Precedence, highest first:
-- the store customer id it carries (or its order's), then its email, then its phone. A record
-- exported several times takes its best match over all its exports (a store id in any export
-- beats an email in another); among equally good matches the latest export wins. Unmatched
-- records keep a NULL customer_id and appear in identity_conflicts as orphans.
{%- set match_precedence = ['store_customer_id', 'email', 'phone'] %}
{#- the systems whose records carry only an email: (source_system, CTE, record id column) #}
{%- set email_only_sources = [
    ('loyalty', 'loyalty_accounts', 'loyalty_account_id'),
    ('reviews', 'reviews', 'review_id'),
] %}

with

subscription_events as (select * from {{ ref('stg_subscriptions__subscription_events') }}),

loyalty_accounts as (select * from {{ ref('stg_loyalty__loyalty_accounts') }}),

returns as (select * from {{ ref('stg_returns__returns') }}),

orders as (select * from {{ ref('stg_store__orders') }}),

reviews as (select * from {{ ref('stg_reviews__reviews') }}),

back_in_stock_requests as (select * from {{ ref('stg_back_in_stock__back_in_stock_requests') }}),

web_events as (select * from {{ ref('stg_web_events__web_events') }}),

customer_map as (select * from {{ ref('int_identity__store_customers') }}),

emails as (
    select * from {{ ref('int_identity__emails') }}
    where is_match
),

people as (select * from {{ ref('int_identity__people') }}),

order_customers as (
    select distinct
        order_id,
        store_customer_id
    from orders
),

records_unioned as (
    select
        'subscriptions' as source_system,
        subscription_event_id as source_record_id,
        store_customer_id,
        email,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        exported_at
    from subscription_events

    union all

    {%- for system, relation, id_column in email_only_sources %}
    select
        '{{ system }}' as source_system,
        {{ id_column }} as source_record_id,
        cast(null as {{ dbt.type_string() }}) as store_customer_id,
        email,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        exported_at
    from {{ relation }}

    union all

    {%- endfor %}
    select
        'returns' as source_system,
        returns.return_id as source_record_id,
        order_customers.store_customer_id,
        returns.email,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        returns.exported_at
    from returns
    left join order_customers
        on returns.order_id = order_customers.order_id

    union all

    select
        'back_in_stock' as source_system,
        back_in_stock_request_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as store_customer_id,
        email,
        phone_e164,
        exported_at
    from back_in_stock_requests

    union all

    -- anonymous visitors (no customer id, no email) cannot be matched and are not orphans
    select
        'web_events' as source_system,
        web_event_id as source_record_id,
        store_customer_id,
        email,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        exported_at
    from web_events
    where store_customer_id is not null or email is not null
),

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

-- Seeds mode reads the seeds through source(); this keeps them built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_store__customers') }}
-- depends_on: {{ ref('raw_store__orders') }}
-- depends_on: {{ ref('raw_store__order_lines') }}
-- depends_on: {{ ref('raw_store__refunds') }}
-- depends_on: {{ ref('raw_subscriptions__subscription_events') }}
-- depends_on: {{ ref('raw_loyalty__loyalty_accounts') }}
-- depends_on: {{ ref('raw_returns__returns') }}
-- depends_on: {{ ref('raw_reviews__reviews') }}
-- depends_on: {{ ref('raw_back_in_stock__back_in_stock_requests') }}
-- depends_on: {{ ref('raw_web_events__web_events') }}
-- Built after staging: its read-through mark is what staging held then (macros/rejected_inputs.sql).
{%- for source_name, table_name in rejected_inputs_raw_tables() %}
-- depends_on: {{ ref('stg_' ~ source_name ~ '__' ~ table_name) }}
{%- endfor %}
-- Every raw value or row that staging refused, with the rule that refused it, so nothing is
-- dropped silently. value_nulled: the field is NULL in staging (the rest of the row is used);
-- row_quarantined: the whole row is left out of staging (a negative amount, an export time
-- after as_of). The raw row stays in the source.
-- Same macros as staging (macros/inputs.sql), so this list and staging always agree.
{%- set checks = [
    {'source': 'store', 'table': 'customers', 'id': 'customer_id', 'field': 'email', 'rule': 'email'},
    {'source': 'store', 'table': 'customers', 'id': 'customer_id', 'field': 'phone', 'rule': 'phone', 'country': 'country_code'},
    {'source': 'store', 'table': 'orders', 'id': 'order_id', 'field': 'email', 'rule': 'email'},
    {'source': 'store', 'table': 'orders', 'id': 'order_id', 'field': 'total_price', 'rule': 'amount'},
    {'source': 'store', 'table': 'order_lines', 'id': 'order_line_id', 'field': 'unit_price', 'rule': 'amount'},
    {'source': 'store', 'table': 'order_lines', 'id': 'order_line_id', 'field': 'quantity', 'rule': 'amount'},
    {'source': 'store', 'table': 'refunds', 'id': 'refund_id', 'field': 'amount', 'rule': 'amount'},
    {'source': 'subscriptions', 'table': 'subscription_events', 'id': 'event_id', 'field': 'customer_email', 'rule': 'email'},
    {'source': 'loyalty', 'table': 'loyalty_accounts', 'id': 'account_id', 'field': 'email', 'rule': 'email'},
    {'source': 'returns', 'table': 'returns', 'id': 'return_id', 'field': 'customer_email', 'rule': 'email'},
    {'source': 'reviews', 'table': 'reviews', 'id': 'review_id', 'field': 'customer_email', 'rule': 'email'},
    {'source': 'back_in_stock', 'table': 'back_in_stock_requests', 'id': 'request_id', 'field': 'email', 'rule': 'email'},
    {'source': 'back_in_stock', 'table': 'back_in_stock_requests', 'id': 'request_id', 'field': 'phone', 'rule': 'phone'},
    {'source': 'web_events', 'table': 'web_events', 'id': 'event_id', 'field': 'email', 'rule': 'email'},
    {'source': 'web_events', 'table': 'web_events', 'id': 'event_id', 'field': 'cart_value', 'rule': 'amount'},
    {'source': 'store', 'table': 'customers', 'id': 'customer_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'store', 'table': 'orders', 'id': 'order_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'store', 'table': 'order_lines', 'id': 'order_line_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'store', 'table': 'refunds', 'id': 'refund_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'subscriptions', 'table': 'subscription_events', 'id': 'event_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'loyalty', 'table': 'loyalty_accounts', 'id': 'account_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'returns', 'table': 'returns', 'id': 'return_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'reviews', 'table': 'reviews', 'id': 'review_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'back_in_stock', 'table': 'back_in_stock_requests', 'id': 'request_id', 'field': '_exported_at', 'rule': 'export_time'},
    {'source': 'web_events', 'table': 'web_events', 'id': 'event_id', 'field': '_exported_at', 'rule': 'export_time'}
] %}
{%- set actions = {'email': 'value_nulled', 'phone': 'value_nulled', 'amount': 'row_quarantined',
                   'export_time': 'row_quarantined'} %}

-- Incremental (macros/rejected_inputs.sql): a build evaluates again the raw rows exported after
-- those evaluated before (int_rejected_inputs__checked_through), and those exported in the future.
{{ config(
    materialized=state_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_rejected_inputs_tail() }}",
) }}
{%- set starts = rejected_inputs_tail_starts() %}

with

{% for check in checks -%}
{{ check.source }}__{{ check.table }}__{{ check.field }} as (
    select
        '{{ check.source }}' as source_system,
        '{{ check.table }}' as source_table,
        {{ blank_to_null(check.id) }} as source_record_id,
        '{{ check.field }}' as field,
        {%- if check.rule == 'email' %}
        {{ email_rejection_reason('value_cleaned') }} as reason,
        {%- elif check.rule == 'phone' %}
        {{ phone_rejection_reason('value_cleaned', check.get('country')) }} as reason,
        {%- elif check.rule == 'amount' %}
        case when {{ is_negative_amount(check.field) }} then 'negative_amount' end as reason,
        {%- else %}
        case when {{ exported_in_future(to_utc('_exported_at', 'UTC')) }} then 'exported_in_future' end as reason,
        {%- endif %}
        '{{ actions[check.rule] }}' as action,
        cast({{ check.field }} as {{ dbt.type_string() }}) as raw_value,
        {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from (
        select
            *,
            {{ clean_identifier_text(check.field) }} as value_cleaned
        from {{ source(check.source, check.table) }}
        where {{ rejected_inputs_raw_in_tail(starts, check.source, check.table) }}
    ) as cleaned
),

{% endfor -%}

rejections_unioned as (
    {%- for check in checks %}
    select * from {{ check.source }}__{{ check.table }}__{{ check.field }}
    where reason is not null and {{ rejected_inputs_in_tail(starts, check.source, check.table) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select
        {{ sha256_hex(dbt.concat(['source_system', "'|'", 'source_table', "'|'", "coalesce(source_record_id, '')",
                                  "'|'", 'field', "'|'", "coalesce(cast(exported_at as " ~ dbt.type_string() ~ "), '')"])) }}
            as rejection_id,
        source_system,
        source_table,
        source_record_id,
        field,
        reason,
        action,
        raw_value,
        exported_at
    from rejections_unioned
)

select * from final

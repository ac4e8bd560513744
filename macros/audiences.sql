{#- Every audience: the project's models named aud_*, from the dbt graph (so empty while dbt
    parses, when the graph is not built yet), sorted by name. -#}
{% macro audience_models() -%}
    {%- set audiences = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.package_name == project_name and node.name.startswith('aud_') -%}
            {%- do audiences.append(node) -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(audiences | sort(attribute='name')) -}}
{%- endmacro %}

{#- The audience data contract's columns, in order, from a CTE holding customer_id,
    email_sha256, phone_sha256 and entered_at. member_fingerprint is what the pusher diffs on. -#}
{% macro audience_columns(audience_name, list_name, exclusivity_group=none) -%}
    {#- every audience ends with this macro, so it also makes every audience merged whole
        (macros/changed_rows.sql): members change little between builds -#}
    {%- do config(materialized=difference_materialization(), incremental_strategy='difference',
                  unique_key='customer_id', on_schema_change='fail') -%}
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(email_sha256 as {{ dbt.type_string() }}) as email_sha256,
    cast(phone_sha256 as {{ dbt.type_string() }}) as phone_sha256,
    cast('{{ audience_name }}' as {{ dbt.type_string() }}) as audience_name,
    cast('{{ list_name }}' as {{ dbt.type_string() }}) as list_name,
    cast({{ "'" ~ exclusivity_group ~ "'" if exclusivity_group else 'null' }} as {{ dbt.type_string() }}) as exclusivity_group,
    cast(entered_at as {{ dbt.type_timestamp() }}) as entered_at,
    {{ member_fingerprint(
        'cast(customer_id as ' ~ dbt.type_string() ~ ')',
        'cast(email_sha256 as ' ~ dbt.type_string() ~ ')',
        'cast(phone_sha256 as ' ~ dbt.type_string() ~ ')') }} as member_fingerprint
{%- endmacro %}

{#- The four cart-recovery audiences differ only in their window and cart value tier, so they
    share this body: carts abandoned in `window` ('0_1d' | '1_3d') with `value_tier`
    ('standard' | 'high'), no order since, not a recent purchaser, treatment-eligible.
    A member enters when its cart reaches the window's lower bound. -#}
{% macro cart_abandon_audience(audience_name, list_name, window, value_tier) -%}
{%- set lower_bound_index = {'0_1d': 0, '1_3d': 1}[window] -%}
with

profile as (select * from {{ ref('customer_profile') }}),
carts as (select * from {{ ref('int_carts_abandoned') }}),

members_selected as (
    select
        profile.customer_id,
        profile.email_sha256,
        profile.phone_sha256,
        {% if lower_bound_index == 0 -%}
        carts.carted_at as entered_at
        {%- else -%}
        {{ dbt.dateadd('day', var('cart_window_days')[lower_bound_index], 'carts.carted_at') }} as entered_at
        {%- endif %}
    from carts
    inner join profile
        on carts.customer_id = profile.customer_id
    where carts.cart_window = '{{ window }}'
        and carts.cart_value_tier = '{{ value_tier }}'
        and not carts.has_ordered_since
        and not profile.is_recent_purchaser
        and profile.is_treatment_eligible
),

final as (
    select
        {{ audience_columns(audience_name, list_name, 'cart_recovery') | indent(8) }}
    from members_selected
)

select * from final
{%- endmacro %}

{#- The rows of an audience for audience_membership: its table when dbt builds it first (a
    declared parent of the model being built), else its own SQL evaluated in place. -#}
{% macro audience_members(audience) -%}
    {%- if audience.unique_id in (model.depends_on.nodes if execute else []) -%}
    select * from {{ ref(audience.name) }}
    {%- else -%}
    {{ render(audience.raw_code) | trim }}
    {%- endif -%}
{%- endmacro %}

{#- The keys audience_membership yields (audience_name, customer_id), for its post_hook. -#}
{% macro audience_membership_keys() -%}
    {%- for audience in audience_models() %}
    select audience_name, customer_id from ({{ audience_members(audience) }}) as {{ audience.name }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

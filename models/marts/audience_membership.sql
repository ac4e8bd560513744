-- One row per audience and member: every audience model (a model named aud_*), found in the
-- dbt graph, so a new audience needs no edit here. dbt fixes a model's parents before it can see
-- the graph, so only the audiences declared below are built before this model: their tables are
-- read. Any other audience's own SQL is evaluated in place, which keeps this model correct
-- whatever order it builds in (same rows, only slower: declare it below to read its table, and
-- remove its line when you remove the audience).
-- The models the audiences read are declared here; an audience reading another model makes
-- dbt name it, to add below.
-- depends_on: {{ ref('customer_profile') }}
-- depends_on: {{ ref('int_carts_abandoned') }}
-- depends_on: {{ ref('aud_cart_abandon_0_1d') }}
-- depends_on: {{ ref('aud_cart_abandon_1_3d') }}
-- depends_on: {{ ref('aud_cart_abandon_high_value_0_1d') }}
-- depends_on: {{ ref('aud_cart_abandon_high_value_1_3d') }}
-- depends_on: {{ ref('aud_lapsed_120d_plus') }}
-- depends_on: {{ ref('aud_lapsed_60_90d') }}
-- depends_on: {{ ref('aud_lapsed_90_120d') }}
-- depends_on: {{ ref('aud_lapsed_high_aov_60d_plus') }}
-- depends_on: {{ ref('aud_post_purchase_cross_sell_7_21d') }}
-- depends_on: {{ ref('aud_purchased_once_21_45d') }}
-- depends_on: {{ ref('aud_suppress_no_discount') }}
-- depends_on: {{ ref('aud_suppress_open_returns') }}
-- depends_on: {{ ref('aud_suppress_recent_purchasers_0_7d') }}
-- depends_on: {{ ref('aud_vip_high_ltv') }}
-- Kept by difference (macros/changed_rows.sql): a build writes only the members whose row changed.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key=['audience_name', 'customer_id'],
    on_schema_change='fail',
    post_hook="{{ delete_rows_without_key(['audience_name', 'customer_id'], audience_membership_keys()) }}",
) }}

with

{% for audience in audience_models() -%}
{{ audience.name }} as (
    {{ audience_members(audience) | indent(4) }}
),

{% endfor -%}
memberships_unioned as (
    {%- for audience in audience_models() %}
    select
        customer_id,
        email_sha256,
        phone_sha256,
        audience_name,
        list_name,
        exclusivity_group,
        entered_at
    from {{ audience.name }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}
)

{% if incremental_build() -%}
{{ rows_not_held('memberships_unioned', ['audience_name', 'customer_id']) }}
{%- else -%}
select * from memberships_unioned
{%- endif %}

-- One row per audience and member: every audience model (a model named aud_*), found in the
-- dbt graph, so a new audience needs no edit here. Each audience's own SQL is evaluated in
-- place instead of read from its table: dbt fixes a model's parents before it can see the
-- graph, and evaluating the SQL keeps this model correct whatever order the audiences build in.
-- The models the audiences read are declared here; an audience reading another model makes
-- dbt name it, to add below.
-- depends_on: {{ ref('customer_profile') }}
-- depends_on: {{ ref('int_carts_abandoned') }}

with

{% for audience in audience_models() -%}
{{ audience.name }} as (
    {{ render(audience.raw_code) | trim | indent(4) }}
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

select * from memberships_unioned

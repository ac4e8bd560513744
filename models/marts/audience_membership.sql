-- One row per audience and member: the union of every aud_* model (listed in audience_models()).

with

{% for audience in audience_models() -%}
{{ audience }} as (select * from {{ ref(audience) }}),
{% endfor %}
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
    from {{ audience }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from memberships_unioned

{#- An audience model's rows carry its own name as audience_name, and every audience sync
    (exposure with meta.pusher.kind audience) that reads it sends it as '<DEST>__<list_name>'.
    So the list name written in the model's SQL and the ones in its exposures cannot drift.
    Fails with one row per mismatch. -#}
{% test audience_matches_its_syncs(model) %}

{%- set syncs = [] -%}
{%- if execute -%}
    {%- set model_ids = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.alias == model.identifier -%}
        {%- do model_ids.append(node.unique_id) -%}
    {%- endfor -%}
    {%- for exposure in graph.exposures.values() if exposure.meta.get('pusher', {}).get('kind') == 'audience' -%}
        {%- if model_ids and model_ids[0] in exposure.depends_on.nodes -%}
            {%- set sync_list_name = exposure.meta.pusher.get('list_name') or '' -%}
            {%- do syncs.append((exposure.name, sync_list_name.split('__', 1)[-1])) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

with

audience_rows as (
    select distinct
        audience_name,
        list_name
    from {{ model }}
),

problems as (
    select
        'audience_name_is_not_the_model' as problem,
        audience_name as found,
        '{{ model.identifier }}' as expected
    from audience_rows
    where audience_name is null or audience_name <> '{{ model.identifier }}'
    {%- for exposure_name, expected_list_name in syncs %}

    union all

    select
        'list_name_differs_from_{{ exposure_name }}' as problem,
        list_name as found,
        '{{ expected_list_name }}' as expected
    from audience_rows
    where list_name is null or list_name <> '{{ expected_list_name }}'
    {%- endfor %}
)

select * from problems

{% endtest %}

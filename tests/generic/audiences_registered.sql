{#- Every audience model (named aud_*, which puts it in audience_membership) has its entry in
    _audiences.yml (the &audience anchor tags it `audience` and enforces its contract) and is read
    by at least one exposure with a meta.pusher sync; every sync exposure reads exactly one
    model. Fails with one row per gap. Applied to audience_membership. -#}
{% test audiences_registered(model) %}

{%- set problems = [] -%}
{%- if execute -%}
    {%- set synced = [] -%}
    {%- for exposure in graph.exposures.values() if exposure.meta.get('pusher') -%}
        {%- if exposure.depends_on.nodes | length != 1 -%}
            {%- do problems.append(('sync_must_read_one_model', exposure.name)) -%}
        {%- endif -%}
        {%- for node_id in exposure.depends_on.nodes -%}
            {%- do synced.append(node_id) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for node in audience_models() -%}
        {%- if 'audience' not in node.tags or not node.config.contract.enforced -%}
            {%- do problems.append(('no_audience_entry', node.name)) -%}
        {%- endif -%}
        {%- if node.unique_id not in synced -%}
            {%- do problems.append(('no_sync_exposure', node.name)) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

{%- if problems %}
    {%- for problem, name in problems %}
select
    '{{ problem }}' as problem,
    '{{ name }}' as node_name
{% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- else %}
select
    cast(null as {{ dbt.type_string() }}) as problem,
    cast(null as {{ dbt.type_string() }}) as node_name
where 1 = 0
{%- endif %}

{% endtest %}

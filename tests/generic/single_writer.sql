{#- Every state attribute has exactly one owning system.
    Applied to a column that declares `meta: {owner: <system>}` (a source name); looks through every model in
    the project for a column of the same name that declares an owner, and fails with one row per
    model that names a different owner, or per second model that also writes the attribute
    with an owner. -#}
{% test single_writer(model, column_name) %}

{%- set problems = [] -%}
{%- if execute -%}
    {%- set found = namespace(owner=none) -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.name == model.identifier -%}
        {%- set column = node.columns.get(column_name) -%}
        {%- set found.owner = column.meta.get('owner') if column else none -%}
    {%- endfor -%}
    {%- set owner = found.owner -%}
    {%- set source_names = [] -%}
    {%- for source in graph.sources.values() -%}
        {%- do source_names.append(source.source_name) -%}
    {%- endfor -%}
    {%- if owner not in source_names -%}
        {%- do problems.append(('owner_missing_or_unknown', model.identifier, owner or '')) -%}
    {%- endif -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- set column = node.columns.get(column_name) -%}
        {%- if column and column.meta.get('owner') and node.name != model.identifier -%}
            {%- do problems.append(('second_writer', node.name, column.meta.get('owner'))) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

{%- if problems %}
    {%- for problem, model_name, writer in problems %}
select
    '{{ problem }}' as problem,
    '{{ column_name }}' as attribute_name,
    '{{ model_name }}' as model_name,
    '{{ writer }}' as declared_owner
{% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- else %}
select
    cast(null as {{ dbt.type_string() }}) as problem,
    cast(null as {{ dbt.type_string() }}) as attribute_name,
    cast(null as {{ dbt.type_string() }}) as model_name,
    cast(null as {{ dbt.type_string() }}) as declared_owner
where 1 = 0
{%- endif %}

{% endtest %}

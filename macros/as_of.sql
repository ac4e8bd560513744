{#- The reference "now" for every window and freshness check.
    var as_of (env PUSHER_AS_OF) pins it so runs are deterministic. When it is empty, "now" is
    the demo world's anchor (var demo_as_of) while the sources are the committed seeds (var
    source_data 'seeds'), so a plain `dbt build` on a fresh clone passes on any date; with any
    other sources (the generator's Parquet, your own data) it is the warehouse's current UTC time,
    so freshness checks stay real. -#}
{% macro as_of() -%}
    {%- set value = as_of_text() -%}
    {%- if value == '' -%}
        {{ adapter.dispatch('current_utc_timestamp', 'retention')() }}
    {%- else -%}
        cast('{{ value }}' as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#- The pinned as_of as text ('' = the warehouse's clock), after the seeds-mode default. -#}
{% macro as_of_text() -%}
    {%- set value = project_var('as_of', 'PUSHER_AS_OF', '') -%}
    {%- if value == '' and source_data_mode() == 'seeds' -%}
        {%- set value = var('demo_as_of', '') | string | trim -%}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}

{#- 'seeds' (the committed demo world) or 'parquet' (the generator's files). -#}
{% macro source_data_mode() -%}
    {{- return(project_var('source_data', 'PUSHER_SOURCE_DATA', 'seeds')) -}}
{%- endmacro %}

{#- A project var set from an env var, trimmed text. dbt can hand a project var over unrendered
    ('{{ env_var(...) }}') in some contexts, so then the env var is read directly. -#}
{% macro project_var(name, env_name, default) -%}
    {%- set value = var(name, default) | string -%}
    {%- if '{' in value -%}{%- set value = env_var(env_name, default) -%}{%- endif -%}
    {{- return(value | string | trim) -}}
{%- endmacro %}

{% macro default__current_utc_timestamp() -%}
    cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro duckdb__current_utc_timestamp() -%}
    cast(current_timestamp at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro postgres__current_utc_timestamp() -%}
    (current_timestamp at time zone 'UTC')
{%- endmacro %}

{% macro spark__current_utc_timestamp() -%}
    to_utc_timestamp(current_timestamp(), current_timezone())
{%- endmacro %}

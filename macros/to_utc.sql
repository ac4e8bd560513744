{#- Convert a naive local timestamp, written in the zone `tz`, to a naive UTC timestamp. -#}
{% macro to_utc(column, tz) -%}
    {{ adapter.dispatch('to_utc', 'retention')(column, tz) }}
{%- endmacro %}

{% macro default__to_utc(column, tz) -%}
    {%- if tz == 'UTC' -%}
        cast({{ column }} as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast((cast({{ column }} as {{ dbt.type_timestamp() }}) at time zone '{{ tz }}') at time zone 'UTC' as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{% macro spark__to_utc(column, tz) -%}
    to_utc_timestamp(cast({{ column }} as timestamp), '{{ tz }}')
{%- endmacro %}

{#- The zone a source's naive timestamps are written in: var source_timezones (the sources'
    YAML shows the same value as `meta.timezone`). UTC when undeclared. -#}
{% macro source_timezone(source_name) -%}
    {{- var('source_timezones', {}).get(source_name, 'UTC') -}}
{%- endmacro %}

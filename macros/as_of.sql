{#- The reference "now" for every window and freshness check.
    var as_of (env PUSHER_AS_OF) pins it so the demo and the tests are deterministic;
    an empty value means the warehouse's current UTC time. -#}
{% macro as_of() -%}
    {%- set value = var('as_of', '') -%}
    {%- if '{' in (value | string) -%}{%- set value = env_var('PUSHER_AS_OF', '') -%}{%- endif -%}
    {%- if value | string | trim == '' -%}
        {{ adapter.dispatch('current_utc_timestamp', 'retention')() }}
    {%- else -%}
        cast('{{ value | string | trim }}' as {{ dbt.type_timestamp() }})
    {%- endif -%}
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

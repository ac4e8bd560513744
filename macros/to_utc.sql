{#- A raw timestamp (text as exported, or a timestamp column) as a naive UTC timestamp.
    A value with an explicit offset or 'Z' ('2026-11-10T08:00:00+05:00') keeps it: that instant
    in UTC (03:00). A naive value ('2026-11-10 08:00:00') is a local time in the zone `tz`
    the source declares; a blank is NULL. Reading the value as text first is what keeps the
    offset: a direct cast to a naive timestamp drops it on DuckDB and PostgreSQL. -#}
{% macro to_utc(column, tz) -%}
    {{ adapter.dispatch('to_utc', 'retention')(column, tz) }}
{%- endmacro %}

{#- Text ending in a time of day with 'Z' or a +HH, +HHMM or +HH:MM offset. -#}
{% macro utc_offset_pattern() -%}
    {{- return('[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?[ ]*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$') -}}
{%- endmacro %}

{% macro default__to_utc(column, tz) -%}
    {%- set text = blank_to_null(column) -%}
    case
        when {{ matches_regex(text, utc_offset_pattern()) }}
            then cast(cast({{ text }} as timestamp with time zone) at time zone 'UTC' as {{ dbt.type_timestamp() }})
        {%- if tz == 'UTC' %}
        else cast({{ text }} as {{ dbt.type_timestamp() }})
        {%- else %}
        else cast((cast({{ text }} as {{ dbt.type_timestamp() }}) at time zone '{{ tz }}') at time zone 'UTC'
            as {{ dbt.type_timestamp() }})
        {%- endif %}
    end
{%- endmacro %}

{#- Spark timestamps are instants shown in the session zone; "naive UTC" is the UTC wall time,
    as in spark__current_utc_timestamp. A string with an offset casts to its instant. -#}
{% macro spark__to_utc(column, tz) -%}
    {%- set text = blank_to_null(column) -%}
    case
        when {{ matches_regex(text, utc_offset_pattern()) }}
            then to_utc_timestamp(cast({{ text }} as timestamp), current_timezone())
        else to_utc_timestamp(cast({{ text }} as timestamp), '{{ tz }}')
    end
{%- endmacro %}

{#- The zone a source's naive timestamps are written in: var source_timezones (the sources'
    YAML shows the same value as `meta.timezone`). UTC when undeclared. -#}
{% macro source_timezone(source_name) -%}
    {{- var('source_timezones', {}).get(source_name, 'UTC') -}}
{%- endmacro %}

{#- True when an export time (naive UTC) lies after as_of() plus var
    future_export_tolerance_hours: a clock or time-zone error. Staging quarantines such rows
    (rejected_inputs), so a bad export time can never make stale data look fresh. -#}
{% macro exported_in_future(exported_at_utc) -%}
    coalesce({{ exported_at_utc }} > {{ dbt.dateadd('hour', var('future_export_tolerance_hours', 1), as_of()) }}, false)
{%- endmacro %}

{#- State precedence, used by every state model:
    the value of `column` from the row with the latest `order_by` among rows where it is known.
    A NULL (a blank after staging) is never chosen while a known value exists, so a blank export
    cannot wipe a value, and a late export of an older row cannot revert a newer one. -#}
{% macro latest_known(column, partition_by, order_by) -%}
    first_value({{ column }}) over (
        partition by {{ partition_by }}
        order by case when {{ column }} is null then 1 else 0 end, {{ order_by }}
        rows between unbounded preceding and unbounded following
    )
{%- endmacro %}

{#- The `timestamp_column` of the row latest_known() picked: feeds `<attr>_updated_at`. -#}
{% macro latest_known_at(column, timestamp_column, partition_by, order_by) -%}
    first_value(case when {{ column }} is not null then {{ timestamp_column }} end) over (
        partition by {{ partition_by }}
        order by case when {{ column }} is null then 1 else 0 end, {{ order_by }}
        rows between unbounded preceding and unbounded following
    )
{%- endmacro %}

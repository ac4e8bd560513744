{#- The rows staging keeps from a raw table that carries money and event times, as one select:
    `columns` (the model's own select list, text), then each of `amounts` cast to numeric,
    each of `timestamps` read as naive UTC from local times in the zone `tz` (to_utc), and
    exported_at from _exported_at. Quarantined, and listed in rejected_inputs by the same
    macros: a row with a negative amount (not an order, refund or cart value), and a row
    exported after as_of (a clock or zone error). Portable as its parts are: to_utc and the
    amount and export checks dispatch per engine (macros/to_utc.sql, macros/inputs.sql). In an
    incremental build only the rows exported after the held ones (macros/incremental.sql). -#}
{% macro staged_amount_rows(relation, columns, amounts, timestamps, tz) -%}
    select * from (
        select
            {{ columns | trim | indent(12) }},
            {%- for amount in amounts %}
            cast({{ amount }} as {{ dbt.type_numeric() }}) as {{ amount }},
            {%- endfor %}
            {%- for timestamp in timestamps %}
            {{ to_utc(timestamp, tz) }} as {{ timestamp }},
            {%- endfor %}
            {{ to_utc('_exported_at', 'UTC') }} as exported_at
        from {{ relation }}
        where
            {%- for amount in amounts %}
            {% if not loop.first %}and {% endif %}not {{ is_negative_amount(amount) }}
            {%- endfor %}
    ) as parsed
    where not {{ exported_in_future('exported_at') }} and {{ exported_in_tail('exported_at') }}
{%- endmacro %}

{#- True when `ts` is at least `lower_days` and less than `upper_days` old at as_of()
    (half-open, so a boundary instant belongs to exactly one window; upper_days none = no limit). -#}
{% macro in_age_window(ts, lower_days, upper_days=none) -%}
    ({{ ts }} <= {{ dbt.dateadd('day', -1 * lower_days, as_of()) }}
    {%- if upper_days is not none %}
        and {{ ts }} > {{ dbt.dateadd('day', -1 * upper_days, as_of()) }}
    {%- endif %})
{%- endmacro %}

{#- Deterministic holdout: the first two hex digits of md5(salt || id) compared with a cut-off
    computed from var holdout_percent. Same id, same group, on every engine and every run. -#}
{% macro holdout_group(customer_id) -%}
    {%- set cutoff = '%02x' % ((var('holdout_percent', 10) | float) * 256 / 100) | round | int -%}
    case
        when substr({{ dbt.hash(dbt.concat(["'" ~ var('holdout_salt', 'pusher') ~ "'", customer_id])) }}, 1, 2) < '{{ cutoff }}'
            then 'holdout'
        else 'treatment'
    end
{%- endmacro %}

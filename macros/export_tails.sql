{#- Export tails per group, for an incremental model whose rows come from several staging models,
    each appended from its own latest export (macros/incremental.sql has the single-tail case).
    An incremental build deletes the held rows of each group exported after the group's latest
    held export less var incremental_lookback_hours (or with a NULL export time), and reads them
    again; a group with no held row is read whole. -#}

{#- {group: start literal} from the rows held, grouped by `group_column`; {} in a full build. -#}
{% macro export_tail_starts_by(group_column) -%}
    {%- set starts = {} -%}
    {%- if incremental_build() -%}
        {%- set query -%}
            select {{ group_column }},
                {{ dbt.dateadd('hour', -1 * (var('incremental_lookback_hours', 0) | int), 'max(exported_at)') }}
            from {{ this }}
            group by {{ group_column }}
        {%- endset -%}
        {%- for row in run_query(query).rows if row[1] is not none -%}
            {%- do starts.update({row[0]: "cast('" ~ row[1] ~ "' as " ~ dbt.type_timestamp() ~ ")"}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(starts) }}
{%- endmacro %}

{#- The condition on exported_at (naive UTC) that keeps the tail of `group`: true when it has no start. -#}
{% macro in_export_tail(starts, group, exported_at='exported_at') -%}
    {{- exported_after(exported_at, starts.get(group)) -}}
{%- endmacro %}

{#- pre_hook: delete the held tail of each of `groups` (the tails read again); the rows of any
    other group are all read again, so all are deleted. -#}
{% macro delete_export_tails_by(group_column, groups) -%}
    {%- if incremental_build() -%}
    {%- set starts = export_tail_starts_by(group_column) -%}
    delete from {{ this }}
    where {{ group_column }} not in ('{{ groups | join("', '") }}')
        {%- for group in groups %}
        or ({{ group_column }} = '{{ group }}' and {{ in_export_tail(starts, group) }})
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}
